/** Which address a MAC gets: its reservation, its previous pool lease, or a free pool address. */
import type { Inventory, Network } from '../inventory/types.js';
import { inCidr, intToIp, ipToInt } from '../inventory/ip.js';
import type { LeaseStore } from '../state/types.js';

export interface Address {
  ip: string;
  network: Network | undefined;
  host?: string;
  reserved: boolean;
}

// Each snapshot's networks as integer ranges, worked out once: parsing every CIDR string for every
// packet was 6% of the DHCP path.
const ranges = new WeakMap<Inventory, Array<{ net: Network; base: number; size: number }>>();

export function networkOf(inv: Inventory, ip: string): Network | undefined {
  let rs = ranges.get(inv);
  if (!rs) {
    rs = inv.networks.flatMap((net) => {
      const base = ipToInt(net.address);
      return base === undefined || !net.cidr ? [] : [{ net, base, size: 2 ** (32 - net.prefix) }];
    });
    ranges.set(inv, rs);
  }
  const n = ipToInt(ip);
  if (n === undefined) return undefined;
  for (const r of rs) if (n >= r.base && n < r.base + r.size) return r.net;
  return undefined;
}

export function reservation(inv: Inventory, mac: string): Address | undefined {
  const m = inv.byMac.get(mac);
  return m ? { ip: m.ip, network: networkOf(inv, m.ip), host: m.host, reserved: true } : undefined;
}

function poolNetwork(inv: Inventory, name: string | undefined): Network | undefined {
  return name ? inv.networks.find((n) => n.name === name && n.pool) : inv.networks.find((n) => n.pool);
}

/**
 * A pool address for an unknown MAC, never one held by another MAC, reserved, or declined. Pure: it
 * reads the store; the store moves its scan hint when the grant is committed.
 */
export function fromPool(inv: Inventory, leases: Pick<LeaseStore, 'holder' | 'lastOf' | 'poolHint'>, mac: string, poolName?: string): Address | undefined {
  const net = poolNetwork(inv, poolName);
  if (!net?.pool) return undefined;
  const start = ipToInt(net.pool.start);
  const end = ipToInt(net.pool.end);
  if (start === undefined || end === undefined) return undefined;
  const usable = (ip: string) => {
    const h = leases.holder(ip);
    return !inv.byIp.has(ip) && (!h || (h.mac === mac && h.state !== 'declined'));
  };
  const last = leases.lastOf(mac);
  if (last && last.state !== 'declined' && inCidr(last.ip, net.cidr)) {
    const n = ipToInt(last.ip)!;
    if (n >= start && n <= end && usable(last.ip)) return { ip: last.ip, network: net, reserved: false };
  }
  // Scan on from where the last allocation ended (wrapping once), so a boot storm does not rescan the
  // leased front of the pool for every new client.
  const size = end - start + 1;
  const from = Math.min(Math.max(leases.poolHint(net.name) ?? start, start), end);
  for (let i = 0; i < size; i++) {
    const n = start + ((from - start + i) % size);
    const ip = intToIp(n);
    if (usable(ip)) return { ip, network: net, reserved: false };
  }
  return undefined;
}
