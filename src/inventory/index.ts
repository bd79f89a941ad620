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

/** Everything of a snapshot but its machines and indexes: small, handed over from a worker in one piece. */
export type InventoryHead = Pick<Inventory, 'site' | 'networks' | 'images' | 'sites' | 'roles' | 'secrets' | 'discovery' | 'profilesDir' | 'version'>;

/**
 * Builds a snapshot from its head and its machines, which may arrive in chunks (a reload hands them over
 * from a worker thread a slice at a time, so no single step stalls the event loop).
 */
export class InventoryBuilder {
  private readonly byMac = new Map<string, Machine>();
  private readonly byIp = new Map<string, Machine>();
  private readonly byHost = new Map<string, Machine>();
  private readonly machines: Machine[] = [];

  constructor(private readonly head: InventoryHead) {}

  add(machines: readonly Machine[]): void {
    for (const m of machines) {
      for (const mac of m.macs) this.byMac.set(mac, m);
      this.byIp.set(m.ip, m);
      for (const ip of Object.values(m.addresses)) this.byIp.set(ip, m);
      this.byHost.set(m.host, m);
      this.machines.push(deepFreeze(m));
    }
  }

  finish(): Inventory {
    const h = this.head;
    const inv: Inventory = {
      site: h.site, networks: h.networks, images: h.images, sites: h.sites, roles: h.roles, machines: this.machines, secrets: h.secrets, discovery: h.discovery,
      byMac: readonlyMap(this.byMac), byHost: readonlyMap(this.byHost), byIp: readonlyMap(this.byIp),
      profilesDir: h.profilesDir, version: h.version,
    };
    deepFreeze({ ...inv, byMac: undefined, byHost: undefined, byIp: undefined });
    return Object.freeze(inv);
  }
}

/** Parse and validate sources (throws ProfileError with every issue): the snapshot's head and its machines. */
export function parseInventory(sources: SourceFile[], profilesDir: string): { head: InventoryHead; machines: Machine[] } {
  const p = parseSources(sources);
  return {
    head: { site: p.site, networks: p.networks, images: p.images, sites: p.sites, roles: p.roles, secrets: p.secrets, discovery: p.discovery, profilesDir, version: versionOf(sources) },
    machines: p.machines,
  };
}

/** Build a frozen snapshot from source texts (throws ProfileError with every issue). */
export function buildInventory(sources: SourceFile[], profilesDir: string): Inventory {
  const { head, machines } = parseInventory(sources, profilesDir);
  const b = new InventoryBuilder(head);
  b.add(machines);
  return b.finish();
}

export async function loadInventory(profilesDir: string): Promise<Inventory> {
  const dir = resolvePath(profilesDir);
  return buildInventory(await readSources(dir), dir);
}
