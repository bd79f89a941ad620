/**
 * Which changes of a PostgreSQL lease batch are sent (src/state/pg/lease-batch.ts): an offer answered
 * already whose ACK (same MAC, same reserved address) follows in the same batch is not; the offer's
 * waiter is told the ACK's answer. Anything else is sent as it came, in order.
 */
import { describe, expect, it } from 'vitest';
import { supersede, type Change, type Waiter } from '../../../src/state/pg/lease-batch.js';
import type { LeaseRecord } from '../../../src/state/types.js';

const exp = '2026-12-02T13:00:00.000Z';
function waiter(mac: string, ip: string, state: LeaseRecord['state'], opts: { reserved?: boolean; answered?: boolean } = {}): Waiter & { got: boolean[] } {
  const change: Change = { rec: { mac, ip, state, expiresAt: exp }, network: 'lab', reserved: opts.reserved ?? true, answered: opts.answered ?? false };
  const w = { change, got: [] as boolean[], resolve(ok: boolean) { w.got.push(ok); } };
  return w;
}
const names = (ws: Waiter[]) => ws.map((w) => `${w.change.rec.mac.slice(-2)} ${w.change.rec.state} ${w.change.rec.ip}`);

describe('supersede', () => {
  it("an answered reserved offer followed by its ACK is not sent; it gets the ACK's answer", async () => {
    const offer = waiter('00:01', '10.0.0.1', 'offered', { answered: true });
    const retry = waiter('00:01', '10.0.0.1', 'offered', { answered: true });
    const other = waiter('00:02', '10.0.0.2', 'offered', { answered: true });
    const ack = waiter('00:01', '10.0.0.1', 'bound');
    const { batch, superseded } = supersede([offer, other, retry, ack]);
    expect(names(batch)).toEqual(['02 offered 10.0.0.2', '01 bound 10.0.0.1']);
    expect(superseded.map(([w]) => w)).toEqual([retry, offer]);
    ack.resolve(false);
    await Promise.all(superseded.map(([, p]) => p));
    for (const [w, p] of superseded) w.resolve(await p);
    expect([offer.got, retry.got, ack.got]).toEqual([[false], [false], [false]]);
  });

  it('kept: a pool offer, another address, a release in between, an offer that is last, one nobody answered', () => {
    const cases: Waiter[][] = [
      [waiter('00:01', '10.0.0.1', 'offered', { answered: true, reserved: false }), waiter('00:01', '10.0.0.1', 'bound', { reserved: false })],
      [waiter('00:01', '10.0.0.1', 'offered', { answered: true }), waiter('00:01', '10.0.0.9', 'bound')],
      [waiter('00:01', '10.0.0.1', 'offered', { answered: true }), waiter('00:01', '10.0.0.1', 'released'), waiter('00:01', '10.0.0.1', 'bound')],
      [waiter('00:01', '10.0.0.1', 'bound'), waiter('00:01', '10.0.0.1', 'offered', { answered: true })],
      [waiter('00:01', '10.0.0.1', 'offered'), waiter('00:01', '10.0.0.1', 'bound')],
    ];
    for (const ws of cases) {
      const { batch, superseded } = supersede(ws);
      expect(names(batch)).toEqual(names(ws));
      expect(superseded).toEqual([]);
    }
  });
});
