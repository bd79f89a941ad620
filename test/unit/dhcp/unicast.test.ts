/**
 * The transport's half of unicast replies, with the real addon where it is built: the CapEff check, the
 * arrival interface lookup, and the fall-back to broadcast (for good on EPERM, for one reply otherwise).
 */
import { networkInterfaces } from 'node:os';
import { describe, expect, it } from 'vitest';
import { hasNetAdmin } from '../../../src/native/neigh.js';
import { interfaceOf, unicastReplies } from '../../../src/dhcp/unicast.js';
import { createLogger } from '../../../src/log.js';

const quiet = createLogger('silent');

describe('unicast replies: capability, interface, fall-back', () => {
  it('reads CAP_NET_ADMIN (bit 12) from CapEff', () => {
    expect(hasNetAdmin('Name:\tnode\nCapEff:\t000001ffffffffff\n')).toBe(true);
    expect(hasNetAdmin('CapEff:\t0000000000000400\n')).toBe(false); // CAP_NET_BIND_SERVICE only (the unit)
    expect(hasNetAdmin('CapEff:\t0000000000001000\n')).toBe(true);
    expect(hasNetAdmin('')).toBe(false);
  });

  it('loopback is no arrival link: broadcast', () => {
    expect(interfaceOf('127.0.0.1')).toBeUndefined();
    expect(unicastReplies('auto', '127.0.0.1', true, quiet).subnet()).toBeUndefined();
  });

  it('off, or no socket on our address: broadcast without asking for the table', () => {
    let asked = 0;
    const open = () => { asked++; return { unavailable: 'x' }; };
    expect(unicastReplies('off', '10.0.0.1', true, quiet, open).subnet()).toBeUndefined();
    expect(unicastReplies('auto', '10.0.0.1', false, quiet, open).subnet()).toBeUndefined();
    expect(asked).toBe(0);
  });

  // Only the lookup uses the machine's own address (no packet is sent); the table is a recorder.
  const own = Object.values(networkInterfaces()).flat().find((a) => a?.family === 'IPv4' && !a.internal)?.address;
  it.skipIf(!own)('EPERM on first use (root dropped after start): broadcast for good; another errno: only that reply', () => {
    const calls: string[] = [];
    let answer: string | undefined = 'ENODEV';
    const u = unicastReplies('auto', own!, true, quiet, () => ({ table: { set: (ifname, ip) => { calls.push(`${ifname} ${ip}`); return answer; } } }));
    expect(u.subnet()).toBeDefined();
    expect(u.install('10.0.0.101', '52:54:00:00:02:01')).toBe(false);
    expect(u.subnet()).toBeDefined();
    answer = undefined;
    expect(u.install('10.0.0.101', '52:54:00:00:02:01')).toBe(true);
    answer = 'EPERM';
    expect(u.install('10.0.0.102', '52:54:00:00:02:02')).toBe(false);
    expect(u.subnet()).toBeUndefined();
    expect(u.install('10.0.0.103', '52:54:00:00:02:03')).toBe(false);
    expect(calls).toHaveLength(3);
    expect(calls[0]).toBe(`${interfaceOf(own!)!.name} 10.0.0.101`);
  });
});
