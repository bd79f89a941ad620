/** The gate on large sends (src/http/bulk.ts): slots, arrival order, the hold limit, a client that leaves while queued. */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { BULK_MIN_BYTES, BulkGate } from '../../../src/http/bulk.js';

beforeEach(() => { vi.useFakeTimers(); });
afterEach(() => { vi.useRealTimers(); });

/** Which of these promises have settled, after the microtasks run. */
async function settled(ps: Array<Promise<unknown>>): Promise<boolean[]> {
  const seen = ps.map(() => false);
  ps.forEach((p, i) => { p.then(() => { seen[i] = true; }, () => { seen[i] = true; }); });
  await vi.advanceTimersByTimeAsync(0);
  return seen;
}

describe('BulkGate', () => {
  it('gates only sends of 32 MiB or more, and nothing with 0 slots', () => {
    const g = new BulkGate(2, 1000);
    expect(g.gates(BULK_MIN_BYTES - 1)).toBe(false);
    expect(g.gates(BULK_MIN_BYTES)).toBe(true);
    expect(new BulkGate(0, 1000).gates(1 << 30)).toBe(false);
  });

  it('lets `slots` through at once and the rest in arrival order as slots free', async () => {
    const g = new BulkGate(2, 60_000);
    const t = [g.acquire(), g.acquire(), g.acquire(), g.acquire()];
    expect(await settled(t)).toEqual([true, true, false, false]);
    expect(g.stats()).toEqual({ active: 2, queued: 2, overran: 0, closed: 0 });
    (await t[1]!).release();
    expect(await settled(t)).toEqual([true, true, true, false]);
    (await t[1]!).release(); // a second release of the same ticket frees nothing more
    expect(g.stats()).toEqual({ active: 2, queued: 1, overran: 0, closed: 0 });
    (await t[0]!).release();
    expect(await settled(t)).toEqual([true, true, true, true]);
    (await t[2]!).release();
    (await t[3]!).release();
    expect(g.stats()).toEqual({ active: 0, queued: 0, overran: 0, closed: 0 });
  });

  it('a send that holds its slot for holdMs goes on without it and the next one starts', async () => {
    const g = new BulkGate(1, 5000);
    const first = await g.acquire();
    const second = g.acquire();
    await vi.advanceTimersByTimeAsync(4999);
    expect((await settled([second]))[0]).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect((await settled([second]))[0]).toBe(true);
    expect(g.stats()).toEqual({ active: 1, queued: 0, overran: 1, closed: 0 });
    first.release(); // the overrun send ending later frees nothing: its slot is already the second's
    expect(g.stats().active).toBe(1);
    (await second).release();
    expect(g.stats()).toEqual({ active: 0, queued: 0, overran: 1, closed: 0 });
  });

  it('a send released before holdMs is not counted as overrun and leaves no timer behind', async () => {
    const g = new BulkGate(1, 5000);
    (await g.acquire()).release();
    expect(vi.getTimerCount()).toBe(0);
    expect(g.stats().overran).toBe(0);
  });

  it('a client that goes away while queued leaves the queue (ECANCELED) and does not take a slot', async () => {
    const g = new BulkGate(1, 60_000);
    const first = await g.acquire();
    const ac = new AbortController();
    const gone = g.acquire(ac.signal);
    const third = g.acquire();
    ac.abort();
    await expect(gone).rejects.toMatchObject({ code: 'ECANCELED' });
    expect(g.stats()).toEqual({ active: 1, queued: 1, overran: 0, closed: 0 });
    first.release();
    expect((await settled([third]))[0]).toBe(true);
    await expect(g.acquire(ac.signal)).rejects.toMatchObject({ code: 'ECANCELED' }); // already aborted: not queued
    expect(g.stats().queued).toBe(0);
  });

  it('refuses a nonsense configuration', () => {
    expect(() => new BulkGate(-1, 1000)).toThrow(/slots/);
    expect(() => new BulkGate(1.5, 1000)).toThrow(/slots/);
    expect(() => new BulkGate(1, 0)).toThrow(/holdMs/);
    expect(() => new BulkGate(1, 1000, 'pressure')).toThrow(/pressure probe/);
    expect(new BulkGate(0, 1000, 'pressure').gates(1 << 30)).toBe(false); // no gate: nothing to probe
  });

  it('no hold past holdMs counts as overrun when nobody waited', async () => {
    const g = new BulkGate(1, 5000);
    const t = await g.acquire();
    await vi.advanceTimersByTimeAsync(6000);
    expect(g.stats()).toEqual({ active: 0, queued: 0, overran: 0, closed: 0 });
    t.release();
  });
});

describe('BulkGate, when: pressure', () => {
  it('past its slots, lets sends through while the kernel reports no TCP memory pressure', async () => {
    let pressure = false;
    const g = new BulkGate(2, 60_000, 'pressure', () => pressure);
    const t = [g.acquire(), g.acquire(), g.acquire(), g.acquire()];
    expect(await settled(t)).toEqual([true, true, true, true]);
    expect(g.stats()).toEqual({ active: 4, queued: 0, overran: 0, closed: 0 });
    pressure = true;
    const waiting = g.acquire();
    expect((await settled([waiting]))[0]).toBe(false);
    expect(g.stats()).toEqual({ active: 4, queued: 1, overran: 0, closed: 1 });
    for (const p of t) (await p).release();
    await waiting;
  });

  it('under pressure, nothing new starts until fewer than `slots` are sending, then in arrival order', async () => {
    let pressure = false;
    const g = new BulkGate(2, 60_000, 'pressure', () => pressure);
    const open = await Promise.all([g.acquire(), g.acquire(), g.acquire(), g.acquire()]);
    pressure = true;
    const q = [g.acquire(), g.acquire(), g.acquire()];
    open[0]!.release(); // 3 sending: still not below 2 slots
    open[1]!.release(); // 2 sending
    expect(await settled(q)).toEqual([false, false, false]);
    open[2]!.release(); // 1 sending: one slot free, the first in line goes
    expect(await settled(q)).toEqual([true, false, false]);
    open[3]!.release();
    expect(await settled(q)).toEqual([true, true, false]);
    expect(g.stats()).toMatchObject({ active: 2, queued: 1 });
    for (const p of q.slice(0, 2)) (await p).release();
    await q[2];
  });

  it('once sends wait, the queue drains a slot at a time even after the pressure is gone', async () => {
    let pressure = true;
    const g = new BulkGate(1, 60_000, 'pressure', () => pressure);
    const first = await g.acquire(); // a free slot: starts whatever the kernel says
    const second = g.acquire();
    expect((await settled([second]))[0]).toBe(false);
    pressure = false;
    const third = g.acquire(); // behind the one waiting, not past it
    expect(await settled([second, third])).toEqual([false, false]);
    first.release();
    expect(await settled([second, third])).toEqual([true, false]);
    (await second).release();
    expect(await settled([third])).toEqual([true]);
    (await third).release();
    // The queue is empty and the kernel reports no pressure: open again, past the one slot.
    const t = await Promise.all([g.acquire(), g.acquire(), g.acquire()]);
    expect(g.stats()).toEqual({ active: 3, queued: 0, overran: 0, closed: 1 });
    for (const x of t) x.release();
  });

  it('asks the kernel only when the slots are taken and nobody waits', async () => {
    const probe = vi.fn(() => false);
    const g = new BulkGate(2, 60_000, 'pressure', probe);
    const t = await Promise.all([g.acquire(), g.acquire()]);
    expect(probe).not.toHaveBeenCalled();
    t.push(await g.acquire());
    expect(probe).toHaveBeenCalledTimes(1);
    for (const x of t) x.release();
  });
});
