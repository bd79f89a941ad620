/** TFTP admission (issue 16 item 2): caps that a flood of unanswered requests cannot turn into a lock-out. */
import { describe, expect, it } from 'vitest';
import { SlotTable } from '../../../src/tftp/limits.js';

describe('TFTP slot table', () => {
  it('caps per address; an address at its cap may only replace its own unanswered requests', () => {
    const t = new SlotTable(100, 2);
    const a = t.admit('1.1.1.1:1', '1.1.1.1', 0);
    const b = t.admit('1.1.1.1:2', '1.1.1.1', 0);
    expect(a.ok && b.ok).toBe(true);
    if (a.ok) a.slot.confirmed = true;
    const c = t.admit('1.1.1.1:3', '1.1.1.1', 0);
    expect(c).toMatchObject({ ok: true, evicted: { key: '1.1.1.1:2' } });
    if (c.ok) c.slot.confirmed = true;
    expect(t.admit('1.1.1.1:4', '1.1.1.1', 0)).toMatchObject({ ok: false });
    expect(t.countOf('1.1.1.1')).toBe(2);
  });

  it('when full, a fresh address takes the oldest unanswered slot of the busiest address', () => {
    const t = new SlotTable(6, 16);
    const ended: string[] = [];
    for (const [addr, n] of [['a', 1], ['b', 3], ['c', 2]] as const) {
      for (let i = 0; i < n; i++) {
        const r = t.admit(`${addr}:${i}`, addr, 0);
        if (r.ok) r.slot.onEvict = (why) => ended.push(`${r.slot.key} ${why}`);
      }
    }
    const fresh = t.admit('d:0', 'd', 0);
    expect(fresh).toMatchObject({ ok: true, evicted: { key: 'b:0' } });
    expect(ended).toEqual(['b:0 slot needed by d']);
    expect(t.size).toBe(6);
  });

  it('a flood cannot displace a client holding fewer slots, nor any confirmed transfer', () => {
    const t = new SlotTable(4, 16);
    const fresh = t.admit('fresh:1', 'fresh', 0);
    for (let i = 0; i < 3; i++) t.admit(`x:${i}`, 'x', 0);
    // x (3 slots) asks again: no address holds more than x, so x cannot take anyone's slot.
    expect(t.admit('x:9', 'x', 0)).toMatchObject({ ok: false });
    // New flood addresses take from x (the busiest) first, while fresh has not answered yet.
    const first = t.admit('y0:1', 'y0', 0);
    expect(first).toMatchObject({ ok: true, evicted: { address: 'x' } });
    // Once fresh has answered (its first ACK), no flood displaces it.
    if (fresh.ok) fresh.slot.confirmed = true;
    for (let i = 1; i < 50; i++) {
      const r = t.admit(`y${i}:1`, `y${i}`, 0);
      if (r.ok) expect(r.evicted?.address).not.toBe('fresh');
    }
    expect(t.has('fresh:1')).toBe(true);
    const all = new SlotTable(2, 16);
    for (const k of ['p', 'q']) { const r = all.admit(`${k}:1`, k, 0); if (r.ok) r.slot.confirmed = true; }
    expect(all.admit('r:1', 'r', 0)).toMatchObject({ ok: false, reason: 'all 2 transfer slots are in use' });
  });

  it('release frees the slot once; an evicted slot is already free', () => {
    const t = new SlotTable(1, 1);
    const a = t.admit('a:1', 'a', 0);
    const b = t.admit('b:1', 'b', 0); // evicts a (a holds 1 > b's 0)
    expect(b).toMatchObject({ ok: true, evicted: { key: 'a:1' } });
    if (a.ok) t.release(a.slot);
    expect([t.size, t.countOf('b'), t.countOf('a')]).toEqual([1, 1, 0]);
  });
});
