/**
 * Timelines keep each MAC's events oldest first by time, whatever order they arrive in: history loaded
 * after a degraded start lands after the outage's own events, and another server's batch can be read
 * late (both happened with the PostgreSQL backend, issue 13).
 */
import { describe, expect, it } from 'vitest';
import { Timelines } from '../../../src/state/timelines.js';
import { silentLogger } from '../../../src/log.js';
import type { BootEvent } from '../../../src/events/types.js';

const MAC = '52:54:00:00:09:01';
const ev = (stage: string, at: string): BootEvent => ({ mac: MAC, host: 'w1', stage, at } as BootEvent);

describe('Timelines', () => {
  it('history remembered after newer events goes before them (degraded start, then the database)', () => {
    const t = new Timelines(silentLogger());
    const seen: string[] = [];
    t.subscribe((e) => seen.push(e.stage));
    t.deliver(ev('script', '2026-12-02T10:05:00.000Z')); // during the outage
    t.deliver(ev('kernel', '2026-12-02T10:05:01.000Z'));
    for (const [stage, at] of [['dhcp-discover', '2026-12-01T09:00:00.000Z'], ['dhcp-ack', '2026-12-01T09:00:00.500Z'], ['booted', '2026-12-01T09:01:00.000Z']] as const) t.remember(ev(stage, at));
    expect(t.timeline(MAC).map((e) => e.stage)).toEqual(['dhcp-discover', 'dhcp-ack', 'booted', 'script', 'kernel']);
    expect(t.last(MAC)?.stage).toBe('kernel');
    expect(seen).toEqual(['script', 'kernel']); // loaded history is not news
  });

  it('a late event goes to its place, equal times keep their arrival order, the cap drops the oldest', () => {
    const t = new Timelines(silentLogger(), { perMac: 3 });
    t.deliver(ev('a', '2026-12-02T10:00:00.000Z'));
    t.deliver(ev('c', '2026-12-02T10:00:02.000Z'));
    t.deliver(ev('b', '2026-12-02T10:00:01.000Z'));
    expect(t.timeline(MAC).map((e) => e.stage)).toEqual(['a', 'b', 'c']);
    t.deliver(ev('c2', '2026-12-02T10:00:02.000Z'));
    expect(t.timeline(MAC).map((e) => e.stage)).toEqual(['b', 'c', 'c2']);
    t.deliver(ev('old', '2026-12-02T09:00:00.000Z'));
    expect(t.timeline(MAC).map((e) => e.stage)).toEqual(['b', 'c', 'c2']);
  });
});
