// The ARP-entry addon (native/neigh/neigh.c): DHCP installs yiaddr → chaddr on the arrival interface before it
// unicasts a reply to a client that has no address yet, as dnsmasq does (Node has no API for the neighbour
// table). SIOCSARP needs CAP_NET_ADMIN, which the packaged unit does not grant by default.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { addonFile } from './addon.js';
import { getSystemErrorName } from 'node:util';

interface Binding {
  setArp(ifname: string, ip: number, mac: Buffer): number;
}

export interface NeighbourTable {
  /** Installs ip → mac on ifname; undefined when done, else the errno's name ('EPERM', 'ENODEV', ...). */
  set(ifname: string, ip: string, mac: Buffer): string | undefined;
}

const addonPath = (): string => addonFile('neigh');

const CAP_NET_ADMIN = 12n;

/** Whether this process holds CAP_NET_ADMIN in its effective set (Linux /proc/self/status CapEff). */
export function hasNetAdmin(status = readStatus()): boolean {
  const hex = /^CapEff:\s*([0-9a-f]+)$/m.exec(status)?.[1];
  return hex !== undefined && ((BigInt(`0x${hex}`) >> CAP_NET_ADMIN) & 1n) === 1n;
}

function readStatus(): string {
  try { return readFileSync('/proc/self/status', 'utf8'); } catch { return ''; }
}

const ipToU32 = (ip: string): number => ip.split('.').reduce((a, o) => a * 256 + Number(o), 0);

/** The neighbour table, or why it cannot be written (no addon, not Linux, no CAP_NET_ADMIN). */
export function neighbourTable(): { table: NeighbourTable } | { unavailable: string } {
  if (process.platform !== 'linux') return { unavailable: `neighbour entries are Linux-only (platform ${process.platform})` };
  if (!hasNetAdmin()) return { unavailable: 'no CAP_NET_ADMIN (needed to add ARP entries)' };
  const file = addonPath();
  if (!existsSync(file)) return { unavailable: `native addon not built: ${file} missing (run npm run build:native)` };
  let binding: Binding;
  try {
    binding = createRequire(import.meta.url)(file) as Binding;
  } catch (e) {
    return { unavailable: `native addon failed to load: ${(e as Error).message}` };
  }
  return {
    table: {
      set(ifname, ip, mac) {
        const errno = binding.setArp(ifname, ipToU32(ip), mac);
        if (errno === 0) return undefined;
        try { return getSystemErrorName(-errno); } catch { return `E${errno}`; }
      },
    },
  };
}
