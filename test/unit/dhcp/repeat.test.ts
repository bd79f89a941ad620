import { describe, expect, it } from 'vitest';
import { RepeatedAnswers, type RequestId } from '../../../src/dhcp/repeat.js';
import { decodeDhcp, encodeDhcp, type DhcpPacket } from '../../../src/dhcp/packet.js';
import type { Inventory } from '../../../src/inventory/types.js';

const inv = { version: 'a' } as unknown as Inventory;
/** A reply whose yiaddr tells the answers apart. */
const answer = (yiaddr: string) => {
  const packet: DhcpPacket = { op: 2, htype: 1, hlen: 6, hops: 0, xid: 7, secs: 0, flags: 0, ciaddr: '0.0.0.0', yiaddr, siaddr: '10.0.0.1', giaddr: '0.0.0.0',
    chaddr: Buffer.alloc(16, 1), sname: '', file: 'undionly.kpxe', options: new Map([[53, Buffer.from([2])], [54, Buffer.from([10, 0, 0, 1])]]) };
  return { packet, order: [53, 54], yiaddr, type: 2 };
};
const mac = (n: number) => Buffer.from([0x52, 0x54, 0, 0, n >> 8, n & 255, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
const id = (n: number, o: Partial<RequestId> = {}): RequestId => ({ chaddr: mac(n), xid: 7, type: 1, length: 300, viaProxyPort: false, ...o });
const yiaddrOf = (bytes: Uint8Array | undefined) => { const d = bytes && decodeDhcp(Buffer.from(bytes)); return d?.ok ? d.packet.yiaddr : undefined; };

describe('RepeatedAnswers', () => {
  it('answers the same request again within the window, on the same snapshot only', () => {
    const r = new RepeatedAnswers(2000);
    const k = id(1);
    const a = answer('10.0.0.5');
    r.put(k, 1000, inv, a);
    const kept = r.get(k, 2999, inv);
    expect(Buffer.from(kept!.bytes)).toEqual(encodeDhcp(a.packet, a.order)); // the same bytes as sent the first time
    expect(kept).toMatchObject({ yiaddr: '10.0.0.5', type: 2 });
    expect(r.get(k, 2999, { version: 'b' } as unknown as Inventory)).toBeUndefined(); // a reload: decided again
    r.put(k, 1000, inv, a);
    expect(r.get(k, 3000, inv)).toBeUndefined(); // window passed
    r.put(k, 1000, inv, a);
    expect(r.get(id(1, { xid: 8 }), 1001, inv)).toBeUndefined(); // another xid
    expect(r.get(id(1, { type: 3 }), 1001, inv)).toBeUndefined(); // another message type
    expect(r.get(id(1, { length: 301 }), 1001, inv)).toBeUndefined(); // another request
    expect(r.get(id(1, { viaProxyPort: true }), 1001, inv)).toBeUndefined(); // the other port
    expect(r.get(id(2), 1001, inv)).toBeUndefined(); // another client
    expect(r.get(id(1), 1001, inv)).toBeDefined();
  });

  it('holds no snapshot: an answer made on one a reload replaced does not keep it alive', () => {
    const r = new RepeatedAnswers(2000, 4);
    const old = { version: 'old' } as unknown as Inventory;
    for (let i = 0; i < 3; i++) r.put(id(i), 1000, old, answer('10.0.0.5'));
    const fresh = { version: 'new' } as unknown as Inventory;
    expect(r.get(id(0), 1001, fresh)).toBeUndefined();
    expect(r.get(id(1), 1001, old)).toBeDefined(); // the same object is the same snapshot
    // Nothing the cache holds strongly is a snapshot (it keeps them as numbers, the last one asked weakly).
    const held = Object.values(r as unknown as Record<string, unknown>).flatMap((v) => (Array.isArray(v) ? v : [v]));
    expect(held.some((v) => v === old || v === fresh)).toBe(false);
  });

  it('keeps at most max answers, the newest', () => {
    const r = new RepeatedAnswers(2000, 3);
    for (let i = 0; i < 5; i++) r.put(id(i), 1000 + i, inv, answer(`10.0.0.${i}`));
    expect(r.size).toBe(3);
    expect(r.get(id(1), 1010, inv)).toBeUndefined();
    expect(yiaddrOf(r.get(id(4), 1010, inv)?.bytes)).toBe('10.0.0.4');
    expect(r.get(id(4), 5000, inv)).toBeUndefined(); // past the window: dropped when asked
    expect(r.size).toBe(2);
  });

  it('finds every kept answer through collisions and removals (the table against a Map)', () => {
    const r = new RepeatedAnswers(1e9, 64);
    const model = new Map<string, string>();
    let seed = 1;
    const rnd = (n: number) => { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; return seed % n; };
    // The answers of the last 64 puts are kept (a ring: a request kept again frees its old place).
    const putAt = new Map<string, number>();
    let puts = 0;
    const live = (k: string) => (putAt.get(k) ?? -1e9) > puts - 64 ? model.get(k) : undefined;
    for (let step = 0; step < 5000; step++) {
      const m = rnd(40);
      const x = rnd(4);
      const k = `${m}/${x}`;
      if (rnd(3) === 0) {
        const got = r.get(id(m, { xid: x }), 0, inv);
        expect(got && yiaddrOf(got.bytes), k).toBe(live(k));
        if (got === undefined) model.delete(k);
      } else {
        const ip = `10.0.${rnd(250)}.${rnd(250)}`;
        r.put(id(m, { xid: x }), 0, inv, answer(ip));
        model.set(k, ip);
        putAt.set(k, ++puts);
      }
    }
    for (const k of model.keys()) {
      const [m, x] = k.split('/').map(Number);
      const got = r.get(id(m!, { xid: x! }), 0, inv);
      expect(got && yiaddrOf(got.bytes), k).toBe(live(k));
    }
  });

  it('a window of 0 keeps nothing', () => {
    const r = new RepeatedAnswers(0);
    expect(r.put(id(1), 1, inv, answer('10.0.0.1'))).toBeUndefined();
    expect(r.get(id(1), 1, inv)).toBeUndefined();
  });
});
