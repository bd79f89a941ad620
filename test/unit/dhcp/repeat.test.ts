import { describe, expect, it } from 'vitest';
import { RepeatedAnswers } from '../../../src/dhcp/repeat.js';
import { decodeDhcp, encodeDhcp, type DhcpPacket } from '../../../src/dhcp/packet.js';
import type { Inventory } from '../../../src/inventory/types.js';

const inv = { version: 'a' } as unknown as Inventory;
/** A reply whose yiaddr tells the answers apart. */
const answer = (yiaddr: string) => {
  const packet: DhcpPacket = { op: 2, htype: 1, hlen: 6, hops: 0, xid: 7, secs: 0, flags: 0, ciaddr: '0.0.0.0', yiaddr, siaddr: '10.0.0.1', giaddr: '0.0.0.0',
    chaddr: Buffer.alloc(16, 1), sname: '', file: 'undionly.kpxe', options: new Map([[53, Buffer.from([2])], [54, Buffer.from([10, 0, 0, 1])]]) };
  return { packet, order: [53, 54], yiaddr, type: 2 };
};
const yiaddrOf = (bytes: Uint8Array | undefined) => { const d = bytes && decodeDhcp(Buffer.from(bytes)); return d?.ok ? d.packet.yiaddr : undefined; };

describe('RepeatedAnswers', () => {
  it('answers the same request again within the window, on the same snapshot only', () => {
    const r = new RepeatedAnswers(2000);
    const k = RepeatedAnswers.key('52:54:00:00:00:01', 7, 1, 300, false);
    const a = answer('10.0.0.5');
    r.put(k, 1000, inv, a);
    const kept = r.get(k, 2999, inv);
    expect(Buffer.from(kept!.bytes)).toEqual(encodeDhcp(a.packet, a.order)); // the same bytes as sent the first time
    expect(kept).toMatchObject({ yiaddr: '10.0.0.5', type: 2 });
    expect(r.get(k, 2999, { version: 'b' } as unknown as Inventory)).toBeUndefined(); // a reload: decided again
    r.put(k, 1000, inv, a);
    expect(r.get(k, 3000, inv)).toBeUndefined(); // window passed
    expect(r.get(RepeatedAnswers.key('52:54:00:00:00:01', 8, 1, 300, false), 1001, inv)).toBeUndefined(); // another xid
  });

  it('keeps at most max answers, the newest, and drops those past the window as it goes', () => {
    const r = new RepeatedAnswers(2000, 3);
    for (let i = 0; i < 5; i++) r.put(`k${i}`, 1000 + i, inv, answer(`10.0.0.${i}`));
    expect(r.size).toBe(3);
    expect(r.get('k1', 1010, inv)).toBeUndefined();
    expect(yiaddrOf(r.get('k4', 1010, inv)?.bytes)).toBe('10.0.0.4');
    r.put('late', 5000, inv, answer('10.0.0.9'));
    expect(r.size).toBe(1);
  });

  it('a window of 0 keeps nothing', () => {
    const r = new RepeatedAnswers(0);
    r.put('k', 1, inv, answer('10.0.0.1'));
    expect(r.get('k', 1, inv)).toBeUndefined();
  });
});
