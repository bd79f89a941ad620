/**
 * DHCP sockets on the batched datagram addon (native/dhcpio): a wake-up drains up to BATCH requests with one
 * recvmmsg(2), and the replies of one event-loop turn leave with one sendmmsg(2), encoded straight into a
 * reused send buffer. Same contract as the node:dgram sockets in server.ts (which stay the fall-back when the
 * addon is missing): requests in as (bytes, source), replies out as packets with a destination.
 *
 * A request's bytes are a view of the receive buffer, valid until the handler's first await: decodeDhcp copies
 * what it keeps (chaddr, options), and the buffer is refilled only on the next wake-up.
 */
import { getSystemErrorName } from 'node:util';
import type { Logger } from '../log.js';
import type { DhcpIoBinding, DhcpIoHandle } from '../native/dhcpio.js';
import { encodeDhcpInto, encodedSize, type DhcpPacket } from './packet.js';

/** Where a request came from. */
export interface Peer { address: string; port: number }

/** A DHCP socket as the listener uses it, whatever moves its bytes. */
export interface DhcpSocket {
  readonly port: number;
  /** Send a reply (now, or with the rest of this turn's replies). */
  sendReply(packet: DhcpPacket, order: number[] | undefined, port: number, address: string): void;
  /** Send a reply already encoded (a retransmission's answer, src/dhcp/repeat.ts). */
  sendBytes(bytes: Uint8Array, port: number, address: string): void;
  close(): Promise<void>;
}

export type OnDatagram = (msg: Buffer, from: Peer) => void;

/** Datagrams drained per recvmmsg (the addon's cap), and the bytes kept for each: more is dropped as truncated. */
const BATCH = 64;
const SLOT = 4096;
const SEND_BYTES = 128 * 1024;

function u32(ip: string): number {
  let n = 0;
  let part = 0;
  let parts = 0;
  for (let i = 0; i < ip.length; i++) {
    const c = ip.charCodeAt(i);
    if (c === 0x2e) { n = n * 256 + part; part = 0; parts++; } else part = part * 10 + (c - 0x30);
  }
  return parts === 3 ? (n * 256 + part) >>> 0 : 0;
}

const dotted = (n: number) => `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;

/**
 * Replies of every batch socket of a listener, sent once the requests of this wake-up are handled: a
 * microtask, which runs when the batch's callback returns (the addon calls it through napi_make_callback,
 * which drains the microtasks), after the replies its handlers made at once and those that waited only on
 * promises already settled (a renewal's commit). A reply that waited on I/O (a grant's fdatasync) goes in
 * the microtasks after that I/O. It was setImmediate: at a thousand requests a second every request is a
 * wake-up of its own, and each paid an extra loop iteration (the check phase, an epoll_wait) to send.
 */
export class Outbox {
  private readonly pending = new Set<BatchSocket>();
  private scheduled = false;

  add(s: BatchSocket): void {
    this.pending.add(s);
    if (this.scheduled) return;
    this.scheduled = true;
    queueMicrotask(() => this.flush());
  }

  flush(): void {
    this.scheduled = false;
    for (const s of this.pending) s.flush();
    this.pending.clear();
  }
}

export class BatchSocket implements DhcpSocket {
  private readonly recv = Buffer.alloc(BATCH * SLOT);
  private readonly recvMeta = new Uint32Array(BATCH * 3);
  private out = Buffer.alloc(SEND_BYTES);
  private readonly outMeta = new Uint32Array(BATCH * 4);
  private queued = 0;
  private used = 0;
  private closed = false;

  private constructor(private readonly io: DhcpIoBinding, private readonly handle: DhcpIoHandle, readonly port: number,
    private readonly outbox: Outbox, private readonly logger: Logger) {}

  /** Bound and polling; a bind error is thrown with its `code` (EADDRINUSE, EACCES...) as node:dgram's are. */
  static open(io: DhcpIoBinding, address: string, port: number, rcvbuf: number, outbox: Outbox, logger: Logger,
    onDatagram: OnDatagram, onTruncated: (from: Peer, length: number) => void): BatchSocket {
    let opened: ReturnType<DhcpIoBinding['open']>;
    try {
      opened = io.open(address, port, rcvbuf, true);
    } catch (e) {
      const errno = (e as { errno?: number }).errno;
      if (errno) Object.assign(e as object, { code: getSystemErrorName(-errno), syscall: 'bind', address, port });
      throw e;
    }
    const s = new BatchSocket(io, opened.handle, opened.port, outbox, logger);
    io.start(opened.handle, s.recv, s.recvMeta, SLOT, (count) => s.received(count, onDatagram, onTruncated));
    return s;
  }

  private received(count: number, onDatagram: OnDatagram, onTruncated: (from: Peer, length: number) => void): void {
    const m = this.recvMeta;
    for (let i = 0; i < count; i++) {
      const len = m[3 * i]!;
      const from = { address: dotted(m[3 * i + 1]!), port: m[3 * i + 2]! };
      if (len > SLOT) onTruncated(from, len);
      else onDatagram(this.recv.subarray(i * SLOT, i * SLOT + len), from);
    }
  }

  sendReply(packet: DhcpPacket, order: number[] | undefined, port: number, address: string): void {
    if (this.closed) return;
    const size = encodedSize(packet, order);
    const at = this.reserve(size);
    this.queue(at, encodeDhcpInto(packet, order, this.out, at, size), port, address);
  }

  sendBytes(bytes: Uint8Array, port: number, address: string): void {
    if (this.closed) return;
    const at = this.reserve(bytes.length);
    this.out.set(bytes, at);
    this.queue(at, bytes.length, port, address);
  }

  /** Where the next datagram of `size` bytes goes in the send buffer (flushing what is queued when full). */
  private reserve(size: number): number {
    if (this.queued === BATCH || this.used + size > this.out.length) this.flush();
    if (size > this.out.length) this.out = Buffer.alloc(2 * size);
    return this.used;
  }

  private queue(at: number, len: number, port: number, address: string): void {
    const q = 4 * this.queued;
    this.outMeta[q] = at;
    this.outMeta[q + 1] = len;
    this.outMeta[q + 2] = u32(address);
    this.outMeta[q + 3] = port;
    this.queued++;
    this.used = at + len;
    this.outbox.add(this);
  }

  flush(): void {
    if (!this.queued || this.closed) return;
    const failed = this.io.send(this.handle, this.out, this.outMeta, this.queued);
    this.queued = 0;
    this.used = 0;
    if (failed) {
      const errno = this.io.lastSendError(this.handle);
      let code = `errno ${errno}`;
      try { code = getSystemErrorName(-errno); } catch { /* unknown errno */ }
      this.logger.warn({ failed, code }, 'dhcp send failed');
    }
  }

  async close(): Promise<void> {
    this.flush();
    this.closed = true;
    this.io.close(this.handle);
  }
}
