// The TFTP session state machine on an injected channel and a virtual clock: loss, duplication,
// reordering windows and timeouts are driven packet by packet, with no socket and no real time.
import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { ReadSession, type Datagram, type SessionResult, type Timers } from '../../../src/tftp/session.js';
import { decode, encodeAck, encodeError } from '../../../src/tftp/packet.js';
import { createHotPoll } from '../../../src/tftp/hotpoll.js';

/** A virtual clock: timers fire only when the test advances time. */
class Clock implements Timers {
  now = 0;
  private seq = 0;
  private readonly pending = new Map<number, { at: number; ms: number; fn: () => void }>();
  readonly delays: number[] = [];
  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.delays.push(ms);
    this.pending.set(id, { at: this.now + ms, ms, fn });
    return id;
  }
  clearTimeout(t: unknown): void {
    this.pending.delete(t as number);
  }
  refresh(t: unknown): void {
    const p = this.pending.get(t as number);
    if (p) p.at = this.now + p.ms;
  }
  /** Fire the earliest timer (moving the clock to it); false when none is pending. */
  fireNext(): boolean {
    let best: [number, { at: number; fn: () => void }] | undefined;
    for (const e of this.pending) if (!best || e[1].at < best[1].at) best = e;
    if (!best) return false;
    this.pending.delete(best[0]);
    this.now = best[1].at;
    best[1].fn();
    return true;
  }
}

/** A seeded PRNG so a failing loss pattern is reproducible. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const flat = (d: Datagram): Buffer => (Array.isArray(d) ? Buffer.concat(d) : d);
const memSource = (data: Buffer) => ({ size: data.length, read: async (o: number, l: number) => data.subarray(o, o + l), peek: (o: number, l: number) => data.subarray(o, o + l) });
const settle = () => new Promise<void>((r) => setImmediate(r));

interface Run {
  result: SessionResult;
  received: Buffer;
  dataSent: number;
  delays: number[];
}

/**
 * Run one transfer between a ReadSession and a simulated receiver (RFC 1350 / RFC 7440 client
 * behaviour) over a channel that can drop DATA, drop ACKs and duplicate ACKs.
 */
async function transfer(data: Buffer, o: { blksize: number; windowsize?: number; dropData?: number; dropAck?: number; dupAck?: boolean; seed?: number; oack?: Record<string, string>; retries?: number }): Promise<Run> {
  const clock = new Clock();
  const rand = rng(o.seed ?? 1);
  const windowsize = o.windowsize ?? 1;
  const chunks: Buffer[] = [];
  let expected = 1;
  let inWindow = 0;
  let dataSent = 0;
  const toServer: Buffer[] = [];
  const ack = (n: number) => {
    if (rand() < (o.dropAck ?? 0)) return;
    toServer.push(encodeAck(n & 0xffff));
    if (o.dupAck) toServer.push(encodeAck(n & 0xffff));
  };
  const fromServer = (d: Datagram) => {
    const p = decode(flat(d));
    if (p.op === 'OACK') return ack(0);
    if (p.op !== 'DATA') return;
    dataSent++;
    if (rand() < (o.dropData ?? 0)) return;
    if (p.block !== (expected & 0xffff)) {
      // A block already received (the sender timed out: our ACK was lost) or a gap inside a window
      // (RFC 7440 §4): either way the receiver ACKs the last block it has in order.
      if (windowsize > 1 || p.block === ((expected - 1) & 0xffff)) { inWindow = 0; ack(expected - 1); }
      return;
    }
    chunks.push(p.data);
    expected++;
    const last = p.data.length < o.blksize;
    if (last || ++inWindow >= windowsize) { inWindow = 0; ack(expected - 1); }
  };
  const session = new ReadSession(fromServer, memSource(data), { blksize: o.blksize, windowsize, timeoutMs: 1000, retries: o.retries ?? 50, oack: o.oack ?? {} }, clock);
  let result: SessionResult | undefined;
  void session.start().then((r) => { result = r; });
  for (let guard = 0; guard < 10_000_000 && !result; guard++) {
    await settle();
    if (toServer.length) { session.receive(decode(toServer.shift()!)); continue; }
    if (!result && !clock.fireNext()) await settle();
  }
  await settle();
  if (!result) throw new Error('transfer did not end');
  return { result, received: Buffer.concat(chunks), dataSent, delays: clock.delays };
}

describe('ReadSession on an injected channel', () => {
  it('lock-step without loss: every block once, byte-identical, a final short block', async () => {
    const data = randomBytes(10 * 512 + 100);
    const r = await transfer(data, { blksize: 512 });
    expect(r.result).toMatchObject({ ok: true, bytes: data.length, blocks: 11, retransmits: 0 });
    expect(r.received.equals(data)).toBe(true);
    expect(r.dataSent).toBe(11);
  });

  it('a size that is a multiple of blksize ends with an empty block', async () => {
    const data = randomBytes(4 * 512);
    const r = await transfer(data, { blksize: 512 });
    expect(r.result).toMatchObject({ ok: true, blocks: 5 });
    expect(r.received.equals(data)).toBe(true);
  });

  it('duplicate ACKs never cause duplicate DATA (no Sorcerer\'s Apprentice)', async () => {
    const data = randomBytes(200 * 512 + 1);
    const r = await transfer(data, { blksize: 512, dupAck: true });
    expect(r.result.ok).toBe(true);
    expect(r.received.equals(data)).toBe(true);
    expect(r.dataSent).toBe(201); // not 2x: the second ACK of each pair is ignored
  });

  it.each([
    ['dropped DATA', { dropData: 0.2 }],
    ['dropped ACKs', { dropAck: 0.2 }],
    ['dropped DATA and ACKs, duplicate ACKs', { dropData: 0.1, dropAck: 0.1, dupAck: true }],
  ])('lock-step completes byte-identical with %s', async (_name, loss) => {
    const data = randomBytes(300 * 1024 + 7);
    const r = await transfer(data, { blksize: 1024, seed: 42, ...loss });
    expect(r.result.ok).toBe(true);
    expect(r.received.equals(data)).toBe(true);
    expect(r.result.ok && r.result.retransmits).toBeGreaterThan(0);
  });

  it('windowsize 8 completes byte-identical with loss (the window is resent from the gap)', async () => {
    const data = randomBytes(500 * 512 + 3);
    const r = await transfer(data, { blksize: 512, windowsize: 8, dropData: 0.05, dropAck: 0.05, seed: 7 });
    expect(r.result.ok).toBe(true);
    expect(r.received.equals(data)).toBe(true);
  });

  it('block numbers roll over past 65535 (blksize 8, 70 000 blocks)', async () => {
    const data = randomBytes(70_000 * 8 + 5);
    const r = await transfer(data, { blksize: 8, windowsize: 16 });
    expect(r.result).toMatchObject({ ok: true, blocks: 70_001 });
    expect(r.received.equals(data)).toBe(true);
  });

  it('retransmits back off (1x, 2x, 4x, 8x, capped) and give up after the retry count', async () => {
    const data = randomBytes(2000);
    const r = await transfer(data, { blksize: 512, dropAck: 1, retries: 5 });
    expect(r.result).toMatchObject({ ok: false, retransmits: 5 });
    expect(r.result.ok ? '' : r.result.reason).toMatch(/timed out after 5 retransmits at block 1/);
    expect(r.delays).toEqual([1000, 2000, 4000, 8000, 8000, 8000]);
  });

  it('an ERROR right after the OACK (OVMF size probe) ends the session as a client abort', async () => {
    const clock = new Clock();
    const sent: Buffer[] = [];
    const s = new ReadSession((d) => sent.push(flat(d)), memSource(randomBytes(5000)), { blksize: 1024, windowsize: 1, timeoutMs: 1000, retries: 5, oack: { tsize: '5000' } }, clock);
    const done = s.start();
    expect(decode(sent[0]!)).toEqual({ op: 'OACK', options: { tsize: '5000' } });
    s.receive(decode(encodeError(8, 'size probe')));
    await expect(done).resolves.toMatchObject({ ok: false, afterOack: true, clientError: { code: 8 } });
    expect(clock.fireNext()).toBe(false); // no timer left behind
  });

  it('ignores ACKs for blocks it never sent, and non-ACK packets', async () => {
    const clock = new Clock();
    const sent: Buffer[] = [];
    const s = new ReadSession((d) => sent.push(flat(d)), memSource(randomBytes(3000)), { blksize: 1024, windowsize: 1, timeoutMs: 1000, retries: 5, oack: {} }, clock);
    void s.start();
    await settle();
    expect(sent).toHaveLength(1);
    s.ack(7);
    s.receive(decode(Buffer.from([0, 3, 0, 1, 1, 2])));
    await settle();
    expect(sent).toHaveLength(1);
    s.cancel('test over');
  });
});

describe('hot polling', () => {
  it('one poller per server turns the loop until the budget after the last poke, then stops', async () => {
    let t = 0;
    let reads = 0;
    const hot = createHotPoll(50, () => { reads++; return t; });
    hot.poke();
    hot.poke(); // a second poke only moves the deadline: it must not start a second poller
    const afterPokes = reads;
    await settle();
    await settle();
    const perTurn = (reads - afterPokes) / 2;
    expect(perTurn).toBe(1); // one poller, one clock read per loop turn
    t = 0.049; // 49 µs later: still within the budget
    const before = reads;
    await settle();
    expect(reads).toBeGreaterThan(before);
    t = 0.051; // past the budget: the poller ends
    await settle();
    const stopped = reads;
    for (let i = 0; i < 5; i++) await settle();
    expect(reads).toBe(stopped);
    hot.poke(); // a new send starts it again
    await settle();
    expect(reads).toBeGreaterThan(stopped + 1);
    hot.stop();
    await settle();
    const afterStop = reads;
    for (let i = 0; i < 3; i++) await settle();
    expect(reads).toBe(afterStop);
  });

  it('a budget of 0 never polls', async () => {
    const off = createHotPoll(0, () => { throw new Error('an off poller must not read the clock'); });
    off.poke();
    for (let i = 0; i < 3; i++) await settle();
  });
});
