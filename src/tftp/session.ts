/**
 * One read transfer as a state machine: OACK (if options were negotiated), then windows of DATA
 * (RFC 7440; windowsize 1 is plain RFC 1350 lock-step). The socket is injected: `send` goes out, the
 * server feeds the client's packets to receive(), so loss and duplication are testable without a network.
 *
 * - Block numbers count past 65535 internally and go out modulo 65536 (rollover to 0, as tftp-hpa does).
 * - A duplicate ACK never triggers a retransmission by itself in lock-step (that is the Sorcerer's
 *   Apprentice bug, RFC 1123 §4.2.3.1); only the timer does. With a window, an ACK of the block before
 *   the window (RFC 7440 §4: the receiver saw a gap) resends the window once per window.
 * - Retransmits back off (doubling, capped at 8x) and give up after `retries`.
 */
import { dataPacket, encodeError, encodeOack, ERR, type Decoded } from './packet.js';

/** One datagram: a buffer, or a gather list sent as one packet. */
export type Datagram = Buffer | Buffer[];

export interface BlockSource {
  size: number;
  read(offset: number, length: number): Promise<Buffer>;
  /** The bytes if they are already in memory (read-ahead), without waiting; else undefined. */
  peek?(offset: number, length: number): Buffer | undefined;
}

export interface SessionOptions {
  blksize: number;
  windowsize: number;
  timeoutMs: number;
  retries: number;
  oack: Record<string, string>;
}

export type SessionResult =
  | { ok: true; bytes: number; blocks: number; retransmits: number }
  | { ok: false; reason: string; clientError?: { code: number; message: string }; afterOack: boolean; retransmits: number };

export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(t: unknown): void;
  /** Restart a pending timer with its original delay (cheaper than clear + set once per block). */
  refresh?(t: unknown): void;
}

const realTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (t) => clearTimeout(t as NodeJS.Timeout),
  refresh: (t) => { (t as NodeJS.Timeout).refresh(); },
};

export class ReadSession {
  private readonly lastBlock: number;
  private state: 'oack' | 'data' | 'done' = 'data';
  private base = 1; // first block not yet acknowledged
  private readonly cache = new Map<number, Datagram>();
  private timer: unknown;
  private timerMs = 0;
  private tries = 0;
  private retransmits = 0;
  private resentThisWindow = false;
  private gen = 0;
  private finish!: (r: SessionResult) => void;
  readonly done: Promise<SessionResult>;

  constructor(private readonly send: (b: Datagram) => void, private readonly source: BlockSource, private readonly opts: SessionOptions, private readonly timers: Timers = realTimers) {
    // The last block is the first one shorter than blksize: a 0-byte block when size is a multiple.
    this.lastBlock = Math.floor(source.size / opts.blksize) + 1;
    this.done = new Promise((r) => { this.finish = r; });
  }

  start(): Promise<SessionResult> {
    if (Object.keys(this.opts.oack).length > 0) {
      this.state = 'oack';
      this.transmit();
    } else {
      void this.sendWindow();
    }
    return this.done;
  }

  receive(p: Decoded): void {
    if (this.state === 'done') return;
    if (p.op === 'ERROR') {
      const afterOack = this.state === 'oack';
      this.end({ ok: false, reason: `client error ${p.code}: ${p.message}`, clientError: { code: p.code, message: p.message }, afterOack, retransmits: this.retransmits });
      return;
    }
    if (p.op !== 'ACK') return; // anything else on this TID is noise
    this.ack(p.block);
  }

  /** An ACK's 16-bit block number (the transport's fast path: no decoded object per ACK). */
  ack(block: number): void {
    if (this.state === 'done') return;
    if (this.state === 'oack') {
      if (block !== 0) return;
      this.state = 'data';
      this.progress();
      void this.sendWindow();
      return;
    }
    this.onAck(block);
  }

  /** Abort from outside (server shutdown). */
  cancel(reason: string): void {
    this.end({ ok: false, reason, afterOack: this.state === 'oack', retransmits: this.retransmits });
  }

  private onAck(wire: number): void {
    // Map the 16-bit block to the one block in [base-1, base+window-1] it can mean.
    const lo = this.base - 1;
    const n = lo + ((wire - (lo & 0xffff) + 0x10000) & 0xffff);
    if (n > this.base + this.opts.windowsize - 1) return; // not something we sent: ignore
    if (n < this.base) {
      if (this.opts.windowsize > 1 && !this.resentThisWindow) {
        this.resentThisWindow = true;
        this.retransmits++;
        void this.sendWindow();
      }
      return;
    }
    for (let b = this.base; b <= n; b++) this.cache.delete(b);
    this.base = n + 1;
    this.progress();
    if (this.base > this.lastBlock) {
      this.end({ ok: true, bytes: this.source.size, blocks: this.lastBlock, retransmits: this.retransmits });
      return;
    }
    void this.sendWindow();
  }

  private progress(): void {
    this.tries = 0;
    this.resentThisWindow = false;
  }

  /** Block n's byte range in the file (the last block may be short or empty). */
  private span(n: number): { off: number; len: number } {
    const off = (n - 1) * this.opts.blksize;
    return { off, len: Math.max(0, Math.min(this.opts.blksize, this.source.size - off)) };
  }

  private async block(n: number): Promise<Datagram> {
    let pkt = this.cache.get(n);
    if (!pkt) {
      const { off, len } = this.span(n);
      pkt = dataPacket(n, len ? await this.source.read(off, len) : Buffer.alloc(0));
      this.cache.set(n, pkt);
    }
    return pkt;
  }

  /** The window's packets if every block is at hand without I/O (the common case with read-ahead). */
  private windowNow(end: number): Datagram[] | undefined {
    const pkts: Datagram[] = [];
    for (let n = this.base; n <= end; n++) {
      let pkt = this.cache.get(n);
      if (!pkt) {
        const { off, len } = this.span(n);
        const data = len ? this.source.peek?.(off, len) : Buffer.alloc(0);
        if (!data) return undefined;
        pkt = dataPacket(n, data);
        this.cache.set(n, pkt);
      }
      pkts.push(pkt);
    }
    return pkts;
  }

  private async sendWindow(): Promise<void> {
    const gen = ++this.gen;
    const end = Math.min(this.base + this.opts.windowsize - 1, this.lastBlock);
    // Fast path: no await between an ACK and the next DATA when the bytes are already in memory.
    const ready = this.windowNow(end);
    if (ready) {
      for (const p of ready) this.send(p);
      this.arm();
      return;
    }
    const pkts: Datagram[] = [];
    try {
      for (let n = this.base; n <= end; n++) pkts.push(await this.block(n));
    } catch (err) {
      // Tell the client (ERROR 0, as tftpd-hpa does) rather than leave it to its own timeout.
      if (this.state !== 'done') this.send(encodeError(ERR.NOT_DEFINED, 'Read error'));
      this.end({ ok: false, reason: `read failed: ${(err as Error).message}`, afterOack: false, retransmits: this.retransmits });
      return;
    }
    // An ACK that arrived while we were reading has already moved the window on: its send wins.
    if (gen !== this.gen || this.state === 'done') return;
    for (const p of pkts) this.send(p);
    this.arm();
  }

  private transmit(): void {
    if (this.state === 'oack') {
      this.send(encodeOack(this.opts.oack));
      this.arm();
    } else {
      void this.sendWindow();
    }
  }

  private arm(): void {
    const ms = this.opts.timeoutMs * Math.min(2 ** this.tries, 8);
    // Lock-step arms once per block: restart the pending timer in place when the delay is unchanged.
    if (this.timer !== undefined && ms === this.timerMs && this.timers.refresh) {
      this.timers.refresh(this.timer);
      return;
    }
    this.timers.clearTimeout(this.timer);
    this.timerMs = ms;
    this.timer = this.timers.setTimeout(() => this.onTimeout(), ms);
  }

  private onTimeout(): void {
    this.timer = undefined;
    if (this.state === 'done') return;
    this.tries++;
    if (this.tries > this.opts.retries) {
      this.end({ ok: false, reason: `timed out after ${this.opts.retries} retransmits at block ${this.base}`, afterOack: this.state === 'oack', retransmits: this.retransmits });
      return;
    }
    this.retransmits++;
    this.transmit();
  }

  private end(r: SessionResult): void {
    if (this.state === 'done') return;
    this.state = 'done';
    this.timers.clearTimeout(this.timer);
    this.cache.clear();
    this.finish(r);
  }
}
