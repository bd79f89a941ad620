/** The warm-up runs the request path on made-up requests and touches nothing: no lease, no event, no throw. */
import { describe, expect, it } from 'vitest';
import { warmInBackground, warmUp } from '../../../src/dhcp/warm.js';
import type { Inventory, Network } from '../../../src/inventory/types.js';
import { inventory, machine, role } from '../boot/fixture.js';

const PROV: Network = { name: 'prov', cidr: '10.0.0.0/24', address: '10.0.0.0', prefix: 24, gateway: '10.0.0.254', dns: ['10.0.0.53'], pool: { start: '10.0.0.200', end: '10.0.0.203' } };
const config = { mode: 'authoritative' as const, leaseTime: 3600, serveNonPxe: false, ipxeNoProxyWait: true, poolNetwork: undefined };

describe('warmUp', () => {
  it('runs on a snapshot with machines, and on an empty one', () => {
    const inv: Inventory = { ...inventory([machine('w1', '52:54:00:00:02:01', 'web', { ip: '10.0.0.101' })], [role('web')]), networks: [PROV] };
    const t0 = process.hrtime.bigint();
    expect(() => warmUp({ inv, config, serverId: '10.0.0.1', baseUrl: 'http://10.0.0.1:8080' })).not.toThrow();
    expect(Number(process.hrtime.bigint() - t0) / 1e6).toBeLessThan(5000);
    expect(() => warmUp({ inv: { ...inventory([], [role('web')]), networks: [PROV] }, config, serverId: '10.0.0.1', baseUrl: 'http://10.0.0.1:8080' }, 10)).not.toThrow();
  });
});

describe('warmInBackground', () => {
  it('runs its rounds a slice per turn and stops when told', async () => {
    const inv: Inventory = { ...inventory([machine('w1', '52:54:00:00:02:01', 'web', { ip: '10.0.0.101' })], [role('web')]), networks: [PROV] };
    let asked = 0;
    const ctx = () => { asked++; return { inv, config, serverId: '10.0.0.1', baseUrl: 'http://10.0.0.1:8080' }; };
    const stop = warmInBackground(ctx, 30, 10);
    expect(asked).toBe(0); // nothing in the caller's turn
    await new Promise((r) => setTimeout(r, 200));
    expect(asked).toBe(3);
    const stop2 = warmInBackground(ctx, 1000, 1);
    await new Promise((r) => setImmediate(r));
    stop2();
    const n = asked;
    await new Promise((r) => setTimeout(r, 50));
    expect(asked).toBe(n);
    stop();
  });
});
