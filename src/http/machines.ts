/**
 * GET /api/machines: each machine with its role, addresses, content hash and whether its next boot changes.
 * The hashes published are keyed (HMAC with the server key, `publishedHash`): a plain sha256 over files
 * that hold secrets is an oracle — with everything else in a machine's files known, each guessed
 * password can be checked offline against it (issue 16: both lb1 VRRP passwords fell to 8 guesses).
 */
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { Inventory, Machine } from '../inventory/types.js';
import { resolveMachine } from '../inventory/resolve.js';
import { machineContentHash, renderMachineFiles } from '../render/index.js';
import type { RenderContext } from '../render/types.js';
import { readServed } from '../served.js';
import type { EventStore } from '../events/store.js';
import { derive, serverKey } from '../serverkey.js';

// Published forms per server key (an HMAC each): 10,000 of them per request cost more than the rest.
const published = new WeakMap<Buffer, Map<string, string>>();

/** The form of a machine's content hash that may leave the server: keyed, so no guess can be checked against it. */
export function publishedHash(key: Buffer, contentHash: string): string {
  let memo = published.get(key);
  if (!memo) { memo = new Map(); published.set(key, memo); }
  let p = memo.get(contentHash);
  if (p === undefined) {
    if (memo.size > 200_000) memo.clear(); // hashes of past snapshots: bounded, not kept forever
    p = derive(key, 'content-hash', contentHash);
    memo.set(contentHash, p);
  }
  return p;
}

// Content hashes per inventory snapshot: a snapshot is immutable, so a machine's rendered files (and
// their hash) cannot change under it. They are computed once per snapshot, in slices that give the
// event loop back every few milliseconds: at 10,000 machines the whole pass takes about a second, and
// DHCP and TFTP must not wait that long for a turn.
interface Hashes { byHost: Map<string, string>; done: Promise<void> }
const hashes = new WeakMap<Inventory, Map<string, Hashes>>();
const SLICE_MS = 10;

function hashOne(inv: Inventory, ctx: RenderContext, m: Machine): string {
  return machineContentHash(renderMachineFiles(resolveMachine(inv, m), inv, ctx));
}

/** One machine's content hash in this snapshot (also for /api/fleet): from the per-snapshot table, or computed into it. */
export function hashOf(inv: Inventory, ctx: RenderContext, m: Machine): string {
  const { byHost } = contentHashes(inv, ctx);
  let h = byHost.get(m.host);
  if (h === undefined) { h = hashOne(inv, ctx, m); byHost.set(m.host, h); }
  return h;
}

async function fill(inv: Inventory, ctx: RenderContext, byHost: Map<string, string>): Promise<void> {
  let sliceStart = performance.now();
  for (const m of inv.machines) {
    if (!byHost.has(m.host)) byHost.set(m.host, hashOne(inv, ctx, m));
    if (performance.now() - sliceStart > SLICE_MS) {
      await yieldToLoop();
      sliceStart = performance.now();
    }
  }
}

/** Every machine's content hash for this snapshot (computed on first use, shared by concurrent callers). */
export function contentHashes(inv: Inventory, ctx: RenderContext): Hashes {
  let perCtx = hashes.get(inv);
  if (!perCtx) { perCtx = new Map(); hashes.set(inv, perCtx); }
  const key = `${ctx.baseUrl}\0${ctx.server}`;
  let h = perCtx.get(key);
  if (!h) {
    const byHost = new Map<string, string>();
    h = { byHost, done: fill(inv, ctx, byHost) };
    perCtx.set(key, h);
  }
  return h;
}

type EventsView = Pick<EventStore, 'last'>;

function row(inv: Inventory, m: Machine, hash: string, served: Awaited<ReturnType<typeof readServed>>, pub: (x: string) => string, events: EventsView) {
  const rm = resolveMachine(inv, m);
  const last = m.macs.map((x) => served[x]).find((x) => x !== undefined);
  const lastEvent = events.last(m.macs[0]!);
  return {
    host: m.host, macs: m.macs, role: rm.role.name, homeRole: m.role, ip: m.ip, addresses: m.addresses,
    hash: pub(hash), lastServedHash: last ? pub(last.hash) : null, changed: last ? last.hash !== hash : null,
    lastStage: lastEvent?.stage ?? null, lastStageAt: lastEvent?.at ?? null,
  };
}

export async function machineApiRows(inv: Inventory, ctx: RenderContext, dataDir: string, events: EventsView): Promise<unknown[]> {
  const h = contentHashes(inv, ctx);
  const [served, key] = await Promise.all([readServed(dataDir), serverKey(dataDir), h.done]);
  const pub = (x: string) => publishedHash(key, x);
  return inv.machines.map((m) => row(inv, m, hashOf(inv, ctx, m), served, pub, events));
}
