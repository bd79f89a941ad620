import { describe, expect, it } from 'vitest';
import { resolve } from 'node:path';
import { networkOf } from '../../../src/dhcp/allocate.js';
import { loadInventory } from '../../../src/inventory/index.js';
import { inCidr } from '../../../src/inventory/ip.js';

const inv = await loadInventory(resolve(import.meta.dirname, '../../fixtures/profiles'));

describe('networkOf (the packet path\'s own dotted-quad parse)', () => {
  it('answers as the CIDRs say, for good addresses and odd strings alike', () => {
    const net = inv.networks.find((n) => n.cidr)!;
    const inside = net.address.replace(/\.0$/, '.7');
    const probes = [net.address, inside, '0.0.0.0', '255.255.255.255', '10.0.0.256', '010.0.0.7', '10.0.0', '10.0.0.7.1', '10..0.7', '', ' 10.0.0.7',
      '10.0.0.7 ', '1e1.0.0.7', '10.0.0.-1', '10.0.0.07', '10.0.0.1000', 'a.b.c.d', '10.0.0.7\n'];
    for (const ip of probes) {
      const want = inv.networks.find((n) => n.cidr && inCidr(ip, n.cidr));
      expect(networkOf(inv, ip), ip).toBe(want);
    }
    expect(networkOf(inv, inside)).toBe(net);
  });
});
