import { describe, expect, it } from 'vitest';
import { decodeEvents, EventEncoder, type ThreadEvent } from '../../../src/dhcp/thread-events.js';

/** Through the encoder, a structured clone (as postMessage makes one) and the decoder. */
function roundTrip(events: ThreadEvent[], at = '2026-12-03T08:00:00.000Z'): ThreadEvent[] {
  const enc = new EventEncoder();
  for (const e of events) enc.add(e, e.at ?? at);
  const batch = structuredClone(enc.take());
  const out: ThreadEvent[] = [];
  decodeEvents(batch, (e) => out.push(e));
  return out;
}

describe('DHCP thread events on their way to the main thread', () => {
  it('every event arrives as emitted, in order, with its time, keys in the listener\'s order', () => {
    const mac = '52:54:00:00:00:01';
    const sent: ThreadEvent[] = [
      { mac, host: 'w1', stage: 'dhcp-discover', detail: 'PXEClient:Arch:00000:UNDI:002001' },
      { mac, host: 'w1', stage: 'dhcp-offer', address: '10.0.1.1' },
      { mac: '52:54:00:00:00:02', stage: 'dhcp-request', address: '10.0.0.200', at: '2026-12-03T07:59:59.999Z' },
      { mac: '52:54:00:00:00:02', stage: 'dhcp-nak', address: '10.0.0.200', detail: '10.0.0.200 is in use' },
      { mac, host: 'w1', stage: 'dhcp-ignore', detail: '' },
    ];
    const got = roundTrip(sent);
    expect(got).toStrictEqual([
      { mac, host: 'w1', stage: 'dhcp-discover', detail: 'PXEClient:Arch:00000:UNDI:002001', at: '2026-12-03T08:00:00.000Z' },
      { mac, host: 'w1', stage: 'dhcp-offer', address: '10.0.1.1', at: '2026-12-03T08:00:00.000Z' },
      { mac: '52:54:00:00:00:02', stage: 'dhcp-request', address: '10.0.0.200', at: '2026-12-03T07:59:59.999Z' },
      { mac: '52:54:00:00:00:02', stage: 'dhcp-nak', address: '10.0.0.200', detail: '10.0.0.200 is in use', at: '2026-12-03T08:00:00.000Z' },
      { mac, host: 'w1', stage: 'dhcp-ignore', detail: '', at: '2026-12-03T08:00:00.000Z' },
    ]);
    // A journal line reads as before: the keys in the order the listener built them.
    expect(JSON.stringify(got[1])).toBe(JSON.stringify({ mac, host: 'w1', stage: 'dhcp-offer', address: '10.0.1.1', at: '2026-12-03T08:00:00.000Z' }));
  });

  it('an event with keys the compact form has no place for travels whole, in its place', () => {
    const sent: ThreadEvent[] = [
      { mac: 'a', stage: 'dhcp-ack' },
      { mac: 'b', stage: 'booted', verified: false },
      { mac: 'c', stage: 'dhcp-ack', server: 'other', at: '2026-12-03T07:00:00.000Z' },
      { mac: 'd', stage: 'dhcp-ack' },
    ];
    expect(roundTrip(sent).map((e) => [e.mac, e.verified, e.server, e.at])).toEqual([
      ['a', undefined, undefined, '2026-12-03T08:00:00.000Z'], ['b', false, undefined, '2026-12-03T08:00:00.000Z'],
      ['c', undefined, 'other', '2026-12-03T07:00:00.000Z'], ['d', undefined, undefined, '2026-12-03T08:00:00.000Z'],
    ]);
  });

  it('strings go once per batch; the encoder starts afresh after take()', () => {
    const enc = new EventEncoder();
    for (let i = 0; i < 100; i++) enc.add({ mac: '52:54:00:00:00:01', host: 'w1', stage: i % 2 ? 'dhcp-ack' : 'dhcp-request', address: '10.0.1.1' }, 't');
    expect(enc.length).toBe(100);
    const b = enc.take();
    expect(b.strings).toEqual(['t', '52:54:00:00:00:01', 'dhcp-request', 'w1', '10.0.1.1', 'dhcp-ack']);
    expect(enc.length).toBe(0);
    enc.add({ mac: 'x', stage: 'dhcp-ack' }, 'u');
    expect(enc.take()).toEqual({ strings: ['u', 'x', 'dhcp-ack'], fields: [0, 1, 2, -1, -1, -1] });
  });
});
