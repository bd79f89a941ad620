import { describe, expect, it } from 'vitest';
import { RepeatedAnswers } from '../../../src/dhcp/repeat.js';
import type { DhcpAnswer } from '../../../src/dhcp/handle.js';
import type { Inventory } from '../../../src/inventory/types.js';

const inv = { version: 'a' } as unknown as Inventory;
const answer = (mac: string): DhcpAnswer => ({ mac, events: [], log: { level: 'debug', msg: 'x' } });

describe('RepeatedAnswers', () => {
  it('answers the same request again within the window, on the same snapshot only', () => {
    const r = new RepeatedAnswers(2000);
    const k = RepeatedAnswers.key('52:54:00:00:00:01', 7, 1, 300, false);
    r.put(k, 1000, inv, answer('a'));
    expect(r.get(k, 2999, inv)?.mac).toBe('a');
    expect(r.get(k, 2999, { version: 'b' } as unknown as Inventory)).toBeUndefined(); // a reload: decided again
    r.put(k, 1000, inv, answer('a'));
    expect(r.get(k, 3000, inv)).toBeUndefined(); // window passed
    expect(r.get(RepeatedAnswers.key('52:54:00:00:00:01', 8, 1, 300, false), 1001, inv)).toBeUndefined(); // another xid
  });

  it('keeps at most max answers, the newest, and drops those past the window as it goes', () => {
    const r = new RepeatedAnswers(2000, 3);
    for (let i = 0; i < 5; i++) r.put(`k${i}`, 1000 + i, inv, answer(`m${i}`));
    expect(r.size).toBe(3);
    expect(r.get('k1', 1010, inv)).toBeUndefined();
    expect(r.get('k4', 1010, inv)?.mac).toBe('m4');
    r.put('late', 5000, inv, answer('late'));
    expect(r.size).toBe(1);
  });

  it('a window of 0 keeps nothing', () => {
    const r = new RepeatedAnswers(0);
    r.put('k', 1, inv, answer('a'));
    expect(r.get('k', 1, inv)).toBeUndefined();
  });
});
