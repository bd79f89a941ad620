/**
 * The TFTP listener: the only TFTP code that touches node:dgram. Each read gets a fresh socket (its
 * own TID, RFC 1350 §4); packets from any other address/port on that socket get ERROR 5. Read-only:
 * WRQ is refused. Transfers are capped in total and per client (limits.ts: unanswered requests make
 * room for new clients), a transfer whose client goes silent ends after tftp.maxStallMs whatever its
 * timeout and back-off, and files are read one window at a time, so memory stays bounded.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { open } from 'node:fs/promises';
import { acquireFileVersion, type FileIdentity } from '../fsutil.js';
import { performance } from 'node:perf_hooks';
import type { TftpConfig } from '../config.js';
import type { EventSink } from '../events/types.js';
import type { Logger } from '../log.js';
import { decode, encodeError, encodeOack, ERR } from './packet.js';
import { negotiate, type Negotiated } from './options.js';
import { NATIVE_MAX_WINDOW, tftpEngine, type TftpEngine } from '../native/tftp.js';
import { ReadSession, type BlockSource, type SessionResult } from './session.js';
import type { Resolved, TftpResolver } from './resolve.js';
import { createHotPoll } from './hotpoll.js';
import { SlotTable, type Slot } from './limits.js';
import { tftpMetrics } from '../metrics.js';


export interface TftpServerOptions {
  config: TftpConfig;
  resolver: TftpResolver;
  events: EventSink;
  logger: Logger;
}

export interface TftpStats {
  active: number;
  completed: number;
  failed: number;
  refused: number;
  /** Unanswered transfers ended early to make room for a new client. */
  evicted: number;
  bytes: number;
  /** Sends after which the loop was kept polling (see hotpoll.ts). */
  hotPolls: number;
  /** Transfers handed to the native engine (src/native/tftp.ts). */
  native: number;
}

export interface TftpServer {
  port: number;
  close(): Promise<void>;
  stats(): TftpStats;
}

function connect(sock: Socket, port: number, address: string): Promise<void> {
  return new Promise((resolve, reject) => {
    sock.once('error', reject);
    sock.connect(port, address, () => { sock.off('error', reject); resolve(); });
  });
}

function bind(sock: Socket, port: number, address: string): Promise<void> {
  return new Promise((resolve, reject) => {
    sock.once('error', reject);
    sock.bind(port, address, () => { sock.off('error', reject); resolve(); });
  });
}

const READ_AHEAD = 64 * 1024;
/** Hot polling pays while a few transfers wait on short round trips; with many at once the loop is busy anyway. */
const HOT_POLL_MAX_TRANSFERS = 32;

async function openSource(r: Extract<Resolved, { kind: 'file' | 'virtual' }>): Promise<{ source: BlockSource; close(): Promise<void> }> {
  if (r.kind === 'virtual') {
    const c = r.content;
    return { source: { size: c.length, read: async (o, l) => c.subarray(o, o + l), peek: (o, l) => c.subarray(o, o + l) }, close: async () => undefined };
  }
  const fh = await open(r.absPath, 'r');
  // Read ahead in 64 KiB chunks, double-buffered: one thread-pool round trip per chunk instead of per
  // block, and the next chunk is already being read while this one is sent, so a lock-step transfer
  // never waits on the disk. Memory: two chunks per transfer, whatever the file size.
  type Chunk = { at: number; buf: Buffer };
  let cur: Chunk = { at: 0, buf: Buffer.alloc(0) };
  let next: { at: number; p: Promise<Chunk> } | undefined;
  const load = (at: number): Promise<Chunk> => {
    const buf = Buffer.allocUnsafe(Math.min(READ_AHEAD, Math.max(0, r.size - at)));
    return fh.read(buf, 0, buf.length, at).then(({ bytesRead }) => ({ at, buf: buf.subarray(0, bytesRead) }));
  };
  const within = (c: Chunk, offset: number, length: number) => offset >= c.at && offset + length <= c.at + c.buf.length;
  const slice = (c: Chunk, offset: number, length: number) => c.buf.subarray(offset - c.at, offset - c.at + length);
  const prefetch = (offset: number) => {
    const end = cur.at + cur.buf.length;
    if (!next && end < r.size && offset - cur.at >= cur.buf.length / 2) {
      const p = load(end);
      p.catch(() => undefined); // surfaced by read() if the transfer gets there
      next = { at: end, p };
    }
  };
  return {
    source: {
      size: r.size,
      read: async (offset, length) => {
        if (!within(cur, offset, length)) {
          const pending = next;
          next = undefined;
          let c = pending ? await pending.p : undefined;
          // Blocks do not line up with chunks: the block that straddles two is the current chunk's tail
          // joined to the prefetched one (a copy of under one block per chunk).
          if (c && c.at === cur.at + cur.buf.length && offset >= cur.at && offset < c.at) {
            c = { at: offset, buf: Buffer.concat([cur.buf.subarray(offset - cur.at), c.buf]) };
          }
          // blksize is at most 65464 (RFC 2348) < READ_AHEAD: one chunk always holds a whole block.
          cur = c && within(c, offset, length) ? c : await load(offset);
          // Short: the file shrank since it was opened. Never a short block (the client would take it
          // for the last one and keep a cut file): the session ends with an ERROR.
          if (!within(cur, offset, length)) throw new Error(`${r.absPath} is shorter than when it was opened (${r.size} bytes)`);
        }
        prefetch(offset);
        return slice(cur, offset, length);
      },
      peek: (offset, length) => {
        if (!within(cur, offset, length)) return undefined;
        prefetch(offset);
        return slice(cur, offset, length);
      },
    },
    close: () => fh.close(),
  };
}

export async function startTftpServer(opts: TftpServerOptions): Promise<TftpServer> {
  const { config, logger } = opts;
  const main = createSocket({ type: 'udp4', reuseAddr: false });
  const stats: TftpStats = { active: 0, completed: 0, failed: 0, refused: 0, evicted: 0, bytes: 0, hotPolls: 0, native: 0 };
  const slots = new SlotTable(config.maxTransfers, config.maxTransfersPerClient); // by client address:port
  main.on('error', (err) => logger.error({ err }, 'tftp socket error'));
  const hot = createHotPoll(config.busyPollUs);
  const engine = tftpEngine(config.busyPollUs);

  const refuse = (to: RemoteInfo, code: number, msg: string) => {
    stats.refused++;
    main.send(encodeError(code, msg), to.port, to.address);
  };

  // The stall cap: one sweep for all transfers instead of a timer refreshed on every packet.
  const sweep = setInterval(() => {
    const limit = performance.now() - config.maxStallMs;
    for (const slot of slots.values()) {
      if (slot.heard < limit) slots.evict(slot, `client silent for ${Math.round(config.maxStallMs / 1000)} s`);
    }
  }, Math.max(50, Math.min(1000, config.maxStallMs / 4)));
  sweep.unref();

  /** The JS session over a dgram socket: virtual files (rendered configs), and every file without the engine. */
  async function jsTransfer(rinfo: RemoteInfo, r: Extract<Resolved, { kind: 'file' | 'virtual' }>, neg: Negotiated, slot: Slot): Promise<SessionResult | undefined> {
    const src = await openSource(r);
    if (slot.evicted) { await src.close(); return undefined; }
    const sock = createSocket('udp4');
    try {
      // A connected socket per transfer (as tftpd-hpa does): the kernel delivers only the client's
      // packets (another TID gets ICMP port unreachable, RFC 1350 §4's "not disturbing the transfer"),
      // and each send skips the address lookup and the route lookup.
      await bind(sock, 0, config.bind);
      await connect(sock, rinfo.port, rinfo.address);
    } catch (err) {
      sock.close();
      await src.close();
      throw err;
    }
    if (slot.evicted) { sock.close(); await src.close(); return undefined; }
    // Hot polling only where the answer comes back within the spin: the last round trip (send to the
    // client's next packet) decides, so a client on a slow link never makes the loop spin for nothing.
    let sentAt = 0;
    let rttUs = 0;
    const spinFor = 2 * config.busyPollUs;
    const session = new ReadSession((b) => {
      sock.send(b);
      sentAt = performance.now();
      if (spinFor > 0 && rttUs <= spinFor && stats.active <= HOT_POLL_MAX_TRANSFERS) { stats.hotPolls++; hot.poke(); }
    }, src.source,
      { blksize: neg.blksize, windowsize: neg.windowsize, timeoutMs: neg.timeoutMs, retries: config.retries, oack: neg.oack });
    slot.onEvict = (reason) => session.cancel(reason);
    sock.on('message', (msg) => {
      const now = performance.now();
      slot.heard = now;
      slot.confirmed = true;
      if (sentAt) rttUs = (now - sentAt) * 1000;
      // Fast path for the packet that arrives once per block: a plain 4-byte ACK.
      if (msg.length === 4 && msg[0] === 0 && msg[1] === 4) session.ack(msg.readUInt16BE(2));
      else session.receive(decode(msg));
    });
    sock.on('error', (err) => session.cancel(`socket error: ${err.message}`));
    const result = await session.start();
    sock.close();
    await src.close();
    return result;
  }

  /**
   * A file through the native engine (src/native/tftp.ts): same options, same outcome shape. The engine
   * enforces maxStallMs itself, so the sweep leaves the slot alone (heard = Infinity); eviction cancels.
   */
  async function nativeTransfer(eng: TftpEngine, rinfo: RemoteInfo, path: string, size: number, version: FileIdentity | undefined, neg: Negotiated, slot: Slot): Promise<SessionResult | undefined> {
    // The loader a storm's 300 clients ask for: one handle for all of them (the engine dups it per transfer).
    // A file replaced since it was resolved: opened as it is now, as before (a short read ends with "Read error").
    const file = await acquireFileVersion(path, version).catch(() => acquireFileVersion(path));
    const fh = file.fh;
    try {
      if (slot.evicted) return undefined;
      stats.native++;
      return await new Promise<SessionResult>((resolve) => {
        let cancelReason: string | undefined;
        const id = eng.submit({
          bind: config.bind, clientAddress: rinfo.address, clientPort: rinfo.port, fd: fh.fd, size,
          blksize: neg.blksize, windowsize: neg.windowsize, timeoutMs: neg.timeoutMs, retries: config.retries,
          maxStallMs: config.maxStallMs, oack: Object.keys(neg.oack).length ? encodeOack(neg.oack) : undefined,
        }, {
          confirmed: () => { slot.confirmed = true; },
          done: (o) => { stats.hotPolls += o.hotPolls; resolve(o.status === 'ok'
            ? { ok: true, bytes: o.bytes, blocks: Math.floor(o.bytes / neg.blksize) + 1, retransmits: o.retransmits }
            : { ok: false, reason: cancelReason ?? o.message, afterOack: o.afterOack, retransmits: o.retransmits,
              ...(o.status === 'client-error' ? { clientError: { code: o.clientCode, message: o.message } } : {}) }); },
        });
        slot.heard = Infinity;
        slot.onEvict = (reason) => { cancelReason = reason; eng.cancel(id); };
      });
    } finally {
      file.release();
    }
  }

  async function transfer(rinfo: RemoteInfo, filename: string, options: Record<string, string>, slot: Slot): Promise<void> {
    const key = `${rinfo.address}:${rinfo.port}`;
    const log = logger.child({ tftp: key, file: filename });
    const r = await opts.resolver.resolve(filename, { address: rinfo.address });
    if (slot.evicted) return;
    if (r.kind === 'missing' || r.kind === 'denied') {
      log.debug({ reason: r.reason }, 'tftp refused');
      return refuse(rinfo, r.kind === 'missing' ? ERR.NOT_FOUND : ERR.ACCESS, r.kind === 'missing' ? 'File not found' : 'Access violation');
    }
    const size = r.kind === 'file' ? r.size : r.content.length;
    const neg = negotiate(options, size, config);
    const result = engine && r.kind === 'file' && neg.windowsize <= NATIVE_MAX_WINDOW
      ? await nativeTransfer(engine, rinfo, r.absPath, size, r.version, neg, slot)
      : await jsTransfer(rinfo, r, neg, slot);
    if (!result) return;
    const mac = r.mac;
    const host = r.host;
    if (result.ok) {
      stats.completed++;
      stats.bytes += result.bytes;
      log.info({ mac, bytes: result.bytes, blksize: neg.blksize, windowsize: neg.windowsize, retransmits: result.retransmits }, 'tftp sent');
      if (mac) opts.events.emit({ mac, ...(host ? { host } : {}), stage: r.label === 'config' ? 'tftp-config' : r.label === 'loader' ? 'tftp-loader' : 'tftp-file', detail: filename, address: rinfo.address });
    } else if (result.afterOack && result.clientError) {
      // OVMF asks for tsize, reads the OACK, then ends with ERROR 8 and re-requests: not a failure.
      log.debug({ mac, reason: result.reason }, 'tftp client ended after OACK (size probe)');
    } else if (slot.evicted && !slot.confirmed) {
      // Never answered, ended to make room (or by the stall cap): a flood would otherwise fill the log.
      log.debug({ mac, reason: result.reason }, 'tftp request abandoned by its client');
    } else {
      stats.failed++;
      log.warn({ mac, reason: result.reason }, 'tftp transfer failed');
      if (mac) opts.events.emit({ mac, ...(host ? { host } : {}), stage: 'tftp-error', detail: `${filename}: ${result.reason}`, address: rinfo.address });
    }
  }

  main.on('message', (msg, rinfo) => {
    const p = decode(msg);
    if (p.op === 'WRQ') return refuse(rinfo, ERR.ACCESS, 'rolecast TFTP is read-only');
    if (p.op !== 'RRQ') {
      logger.debug({ from: `${rinfo.address}:${rinfo.port}`, reason: p.op === 'INVALID' ? p.reason : `unexpected ${p.op}` }, 'tftp packet dropped');
      if (p.op === 'INVALID') refuse(rinfo, ERR.ILLEGAL_OP, 'Illegal TFTP operation');
      return;
    }
    const key = `${rinfo.address}:${rinfo.port}`;
    if (slots.has(key)) return; // a retransmitted RRQ for a transfer already under way
    const admitted = slots.admit(key, rinfo.address, performance.now());
    if (!admitted.ok) {
      logger.debug({ from: key, reason: admitted.reason }, 'tftp request refused');
      return refuse(rinfo, ERR.NOT_DEFINED, 'Too many transfers, try again');
    }
    if (admitted.evicted) {
      stats.evicted++;
      logger.debug({ from: key, evicted: admitted.evicted.key }, 'tftp: unanswered transfer ended to make room');
    }
    const { slot } = admitted;
    stats.active++;
    const since = process.hrtime.bigint();
    transfer(rinfo, p.filename, p.options, slot).catch((err: unknown) => {
      stats.failed++;
      logger.error({ err, file: p.filename }, 'tftp transfer crashed');
      refuse(rinfo, ERR.NOT_DEFINED, 'Internal error');
    }).finally(() => {
      stats.active--;
      tftpMetrics.finished(since);
      slots.release(slot);
    });
  });

  await bind(main, config.port, config.bind);
  const addr = main.address();
  logger.info({ port: addr.port, bind: config.bind }, 'tftp listening');
  return {
    port: addr.port,
    stats: () => ({ ...stats }),
    close: async () => {
      hot.stop();
      clearInterval(sweep);
      for (const slot of [...slots.values()]) slots.evict(slot, 'server shutting down');
      await new Promise<void>((r) => main.close(() => r()));
    },
  };
}
