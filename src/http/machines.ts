/**
 * GET /api/machines: each machine with its role, addresses, content hash and whether its next boot changes.
 * The hashes published are keyed (HMAC with the server key, `publishedHash`): a plain sha256 over files
 * that hold secrets is an oracle — with everything else in a machine's files known, each guessed
 * password can be checked offline against it (issue 16: both lb1 VRRP passwords fell to 8 guesses).
 */
import type { Inventory } from '../inventory/types.js';
import { resolveMachine } from '../inventory/resolve.js';
import { machineContentHash, renderMachineFiles } from '../render/index.js';
import type { RenderContext } from '../render/types.js';
import { readServed } from '../served.js';
import type { EventStore } from '../events/store.js';
import { derive, serverKey } from '../serverkey.js';

/** The form of a machine's content hash that may leave the server: keyed, so no guess can be checked against it. */
export function publishedHash(key: Buffer, contentHash: string): string {
  return derive(key, 'content-hash', contentHash);
}

// Content hashes per inventory snapshot (also for /api/fleet): a snapshot is immutable, so a machine's rendered files (and
// their hash) cannot change under it. Rendering every machine on every request would not scale.
const hashes = new WeakMap<Inventory, Map<string, string>>();

export function hashOf(inv: Inventory, ctx: RenderContext, m: Inventory['machines'][number]): string {
  let perInv = hashes.get(inv);
  if (!perInv) { perInv = new Map(); hashes.set(inv, perInv); }
  const key = `${ctx.baseUrl}\0${ctx.server}\0${m.host}`;
  let h = perInv.get(key);
  if (h === undefined) {
    h = machineContentHash(renderMachineFiles(resolveMachine(inv, m), inv, ctx));
    perInv.set(key, h);
  }
  return h;
}

export async function machineApiRows(inv: Inventory, ctx: RenderContext, dataDir: string, events: EventStore): Promise<unknown[]> {
  const served = await readServed(dataDir);
  const key = await serverKey(dataDir);
  const pub = (h: string) => publishedHash(key, h);
  return inv.machines.map((m) => {
    const rm = resolveMachine(inv, m);
    const hash = hashOf(inv, ctx, m);
    const last = m.macs.map((x) => served[x]).find((x) => x !== undefined);
    return {
      host: m.host, macs: m.macs, role: rm.role.name, homeRole: m.role, ip: m.ip, addresses: m.addresses,
      hash: pub(hash), lastServedHash: last ? pub(last.hash) : null, changed: last ? last.hash !== hash : null,
      lastStage: events.last(m.macs[0]!)?.stage ?? null, lastStageAt: events.last(m.macs[0]!)?.at ?? null,
    };
  });
}
