/**
 * The inventory snapshot: load → validate → resolve → index → freeze. A reload builds a new snapshot;
 * nothing ever mutates one in place.
 */
import { resolve as resolvePath } from 'node:path';
import { parseSources, readSources, versionOf, type SourceFile } from './load.js';
import type { Inventory, Machine } from './types.js';

export { resolveMachine } from './resolve.js';
export type { Inventory, Machine, ResolvedMachine, Role } from './types.js';

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    if (o instanceof Map) for (const v of o.values()) deepFreeze(v);
    else for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
}

/** Maps are frozen objects but their methods still mutate: expose a read-only view. */
function readonlyMap<K, V>(m: Map<K, V>): ReadonlyMap<K, V> {
  const view: ReadonlyMap<K, V> = {
    get: (k) => m.get(k), has: (k) => m.has(k), get size() { return m.size; },
    forEach: (fn, thisArg) => m.forEach((v, k) => fn.call(thisArg, v, k, view)),
    keys: () => m.keys(), values: () => m.values(), entries: () => m.entries(), [Symbol.iterator]: () => m[Symbol.iterator](),
  };
  return view;
}

/** Build a frozen snapshot from source texts (throws ProfileError with every issue). */
export function buildInventory(sources: SourceFile[], profilesDir: string): Inventory {
  const p = parseSources(sources);
  const byMac = new Map<string, Machine>();
  const byIp = new Map<string, Machine>();
  for (const m of p.machines) {
    for (const mac of m.macs) byMac.set(mac, m);
    byIp.set(m.ip, m);
    for (const ip of Object.values(m.addresses)) byIp.set(ip, m);
  }
  const machines = [...p.machines];
  const inv: Inventory = {
    site: p.site, networks: p.networks, images: p.images, sites: p.sites, roles: p.roles, machines, secrets: p.secrets, discovery: p.discovery,
    byMac: readonlyMap(byMac), byHost: readonlyMap(new Map(machines.map((m) => [m.host, m]))), byIp: readonlyMap(byIp),
    profilesDir, version: versionOf(sources),
  };
  deepFreeze({ ...inv, byMac: undefined, byHost: undefined, byIp: undefined });
  for (const m of machines) deepFreeze(m);
  return Object.freeze(inv);
}

export async function loadInventory(profilesDir: string): Promise<Inventory> {
  const dir = resolvePath(profilesDir);
  return buildInventory(await readSources(dir), dir);
}
