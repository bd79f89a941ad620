/**
 * Whose request is this, when its path names no machine (loaders, images, a bare grub.cfg)? The
 * client's reserved address in the inventory, else the MAC holding a live lease on it. Pure: the lease
 * lookup is passed in.
 */
import type { Inventory } from '../inventory/types.js';

export interface Who {
  mac?: string;
  host?: string;
}

export function machineAt(inv: Inventory, address: string, leaseHolder?: (ip: string) => string | undefined): Who {
  const m = inv.byIp.get(address);
  if (m) return { mac: m.macs[0]!, host: m.host };
  const mac = leaseHolder?.(address);
  if (!mac) return {};
  const host = inv.byMac.get(mac)?.host;
  return host ? { mac, host } : { mac };
}
