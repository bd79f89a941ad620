/** Which address a MAC gets: its reservation, its previous pool lease, or a free pool address. */
import type { Inventory, Network } from '../inventory/types.js';
import { inCidr, intToIp, ipToInt } from '../inventory/ip.js';
import type { LeaseStore } from './leases.js';

export interface Address {
  ip: string;
  network: Network | undefined;
  host?: string;
  reserved: boolean;
}

export function networkOf(inv: Inventory, ip: string): Network | undefined {
  return inv.networks.find((n) => inCidr(ip, n.cidr));
}

export function reservation(inv: Inventory, mac: string): Address | undefined {
  const m = inv.byMac.get(mac);
  return m ? { ip: m.ip, network: networkOf(inv, m.ip), host: m.host, reserved: true } : undefined;
}

function poolNetwork(inv: Inventory, name: string | undefined): Network | undefined {
  return name ? inv.networks.find((n) => n.name === name && n.pool) : inv.networks.find((n) => n.pool);
}

/** A pool address for an unknown MAC, never one held by another MAC, reserved, or declined. */
export function fromPool(inv: Inventory, leases: LeaseStore, mac: string, poolName?: string): Address | undefined {
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
  const from = Math.min(Math.max(leases.poolCursor.get(net.name) ?? start, start), end);
  for (let i = 0; i < size; i++) {
    const n = start + ((from - start + i) % size);
    const ip = intToIp(n);
    if (usable(ip)) {
      leases.poolCursor.set(net.name, n + 1 > end ? start : n + 1);
      return { ip, network: net, reserved: false };
    }
  }
  return undefined;
}
