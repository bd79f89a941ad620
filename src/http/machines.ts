/**
 * GET /api/machines: each machine with its role, addresses, content hash and whether its next boot changes.
 * The hashes published are keyed (HMAC with the server key, `publishedHash`): a plain sha256 over files
 * that hold secrets is an oracle — with everything else in a machine's files known, each guessed
 * password can be checked offline against it (issue 16: both lb1 VRRP passwords fell to 8 guesses).
 */
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { Inventory, Machine } from '../inventory/types.js';
import type { RenderContext } from '../render/types.js';
import type { State } from '../state/types.js';
import { derive } from '../serverkey.js';
import { fleetRow, rootfsPlanOf } from '../boot/fleet.js';
import { resolveMachine } from '../inventory/resolve.js';
import { renderHosts } from '../render/hostfiles.js';
import { realServersOf, virtualServerText } from '../render/keepalived.js';
import { hasSeededHashes, renderKeyOf, seedFilesHashes } from '../boot/content.js';
import type { ImageView } from '../images/view.js';

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

// Content hashes are computed once per snapshot (src/boot/content.ts keeps them). A snapshot from the
// profile loader thread comes with every machine's files hash (the thread rendered them): then this pass
// only asks the plan of each machine and looks its hash up. Otherwise (the loader thread failed) the
// files are rendered here, in slices that give the event loop back every few milliseconds: at 10,000
// machines that takes about a second, and DHCP and TFTP must not wait that long for a turn.
const warmed = new WeakMap<Inventory, Map<string, Promise<void>>>();
const SLICE_MS = 10;

async function sliced<T>(items: readonly T[], fn: (x: T) => void): Promise<void> {
  let sliceStart = performance.now();
  for (const x of items) {
    fn(x);
    if (performance.now() - sliceStart > SLICE_MS) {
      await yieldToLoop();
      sliceStart = performance.now();
    }
  }
}

// Files hashes on their way from the loader thread, per snapshot and render context (expectHashes).
const coming = new WeakMap<Inventory, Map<string, Promise<readonly (string | null)[]>>>();

/**
 * Says that this snapshot's files hashes under `ctx` are on their way: a warm-up started before they
 * arrive (a request right after the start) waits for them instead of rendering every machine here.
 */
export function expectHashes(inv: Inventory, ctx: RenderContext, hashes: Promise<readonly (string | null)[]>): void {
  let perCtx = coming.get(inv);
  if (!perCtx) { perCtx = new Map(); coming.set(inv, perCtx); }
  perCtx.set(renderKeyOf(ctx), hashes);
}

async function fill(inv: Inventory, ctx: RenderContext, hashes: Promise<readonly (string | null)[]> | undefined): Promise<void> {
  const on = hashes ?? coming.get(inv)?.get(renderKeyOf(ctx));
  const handed = on ? await on.catch(() => undefined) : undefined;
  if (handed && !hasSeededHashes(inv, ctx)) seedFilesHashes(inv, ctx, handed);
  // The per-snapshot pieces every machine's files share (each machine resolved, /etc/hosts, the sites'
  // real servers) are O(N) each: built first, each in its own turn, instead of all inside the first
  // load balancer's row (a 150 ms step at 10,000 machines, 300-500 ms on a busy host, after every reload).
  await sliced(inv.machines, (m) => resolveMachine(inv, m));
  renderHosts(inv);
  await yieldToLoop();
  realServersOf(inv, '');
  await yieldToLoop();
  // Each site's real-server block, each in its own turn (the first load balancer's files need them all).
  for (const site of Object.keys(inv.sites)) {
    virtualServerText(inv, site);
    await yieldToLoop();
  }
  await sliced(inv.machines, (m) => plannedRow(inv, ctx, m));
}

/**
 * Every machine's content hash and planned row for this snapshot and render context, computed on first
 * use in slices (shared by concurrent callers). `hashes`: the files hashes the loader thread worked out
 * for it (src/inventory/offthread.ts), awaited first and taken instead of rendering.
 */
export function warmContentHashes(inv: Inventory, ctx: RenderContext, hashes?: Promise<readonly (string | null)[]>): Promise<void> {
  let perCtx = warmed.get(inv);
  if (!perCtx) { perCtx = new Map(); warmed.set(inv, perCtx); }
  const key = renderKeyOf(ctx);
  let p = perCtx.get(key);
  if (!p) {
    p = fill(inv, ctx, hashes);
    const done = p.finally(() => {
      let keys = warm.get(inv);
      if (!keys) { keys = new Set(); warm.set(inv, keys); }
      keys.add(key);
    });
    done.catch(() => undefined);
    perCtx.set(key, p);
  }
  return p;
}

// Snapshots (and render contexts) whose warm-up has finished: every row is ready to be looked up.
const warm = new WeakMap<Inventory, Set<string>>();

/**
 * True while this snapshot's rows wait for files hashes still on their way from the loader thread
 * (right after `serve` starts: the thread hashes every machine while the listeners come up). A request
 * then gets every machine at once, with its hash marked pending, instead of waiting ~0.5-1 s for them.
 * False once they are in, and for snapshots whose hashes nobody is bringing (those wait as before: they
 * are small, or a reload made them ready before its swap).
 */
export function hashesPending(inv: Inventory, ctx: RenderContext): boolean {
  const key = renderKeyOf(ctx);
  return coming.get(inv)?.has(key) === true && warm.get(inv)?.has(key) !== true;
}

type Served = ReturnType<State['served']['all']>;

// What the plan says of each machine (role, content hash) is a function of the snapshot, the URL base
// and the image view: kept per snapshot and view, so a request asks planBoot once per machine only when
// one of them changed (it was 10,000 plans per GET /api/machines). Served records and the last stage
// are live and read per request.
const planned = new WeakMap<Inventory, Map<string, Map<Machine, { mac: string; role: string; hash: string | null }>>>();

/** The image view as a key: the same view gives the same key whatever order its entries were read in. */
export function viewKey(images: ImageView | undefined): string {
  if (!images) return 'null';
  const sorted = (o: object): unknown => Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => [k, v && typeof v === 'object' ? sorted(v as object) : v]));
  return JSON.stringify(sorted(images));
}

export function plannedRow(inv: Inventory, ctx: RenderContext, m: Machine): { mac: string; role: string; hash: string | null } {
  let perView = planned.get(inv);
  if (!perView) { perView = new Map(); planned.set(inv, perView); }
  const key = `${renderKeyOf(ctx)}\0${viewKey(ctx.images)}`;
  let rows = perView.get(key);
  if (!rows) {
    if (perView.size >= 8) perView.clear(); // image versions come and go: keep a few views, not all
    rows = new Map();
    perView.set(key, rows);
  }
  let r = rows.get(m);
  if (!r) {
    const row = fleetRow(inv, ctx, m, {});
    r = { mac: row.mac, role: row.role, hash: row.hash };
    rows.set(m, r);
  }
  return r;
}

function apiRow(inv: Inventory, ctx: RenderContext, state: State, key: Buffer, served: Served, m: Machine) {
  const pub = (h: string | null | undefined) => (h ? publishedHash(key, h) : null);
  const row = plannedRow(inv, ctx, m);
  // As fleetRow: the record of whichever of the machine's MACs was served.
  const last = m.macs.map((x) => served[x]).find((x) => x !== undefined);
  const stage = state.events.last(row.mac);
  return {
    host: m.host, macs: m.macs, role: row.role, homeRole: m.role, ip: m.ip, addresses: m.addresses,
    hash: pub(row.hash), lastServedHash: pub(last?.hash), changed: last && row.hash !== null ? last.hash !== row.hash : null,
    lastStage: stage?.stage ?? null, lastStageAt: stage?.at ?? null,
  };
}

/**
 * GET /api/machines as JSON text (one row per machine, apiRow), produced a slice at a time
 * with the event loop given back between slices: at 10,000 machines building and serialising the whole
 * answer at once held DHCP and TFTP up for ~100 ms per request (issue 15: no stall over 50 ms).
 */
export async function* machineApiJson(inv: Inventory, ctx: RenderContext, state: State, key: Buffer, pending = hashesPending(inv, ctx)): AsyncGenerator<string> {
  if (pending) { yield* pendingApiJson(inv, ctx, state, key); return; }
  await warmContentHashes(inv, ctx);
  const served = state.served.all();
  yield* slicedJsonArray('[', inv.machines, (m) => apiRow(inv, ctx, state, key, served, m), ']');
}

/**
 * GET /api/machines while the files hashes are still coming (hashesPending): the same rows with the
 * plan's role, but `hash` and `changed` null and `hashPending: true` — nothing is said about the content
 * before it is known (a hash guessed or rendered here would cost the event loop the second the loader
 * thread is saving it). The route says so in a header too.
 */
async function* pendingApiJson(inv: Inventory, ctx: RenderContext, state: State, key: Buffer): AsyncGenerator<string> {
  const served = state.served.all();
  yield* slicedJsonArray('[', inv.machines, (m) => {
    const { mac, role } = rootfsPlanOf(inv, ctx, m);
    const last = m.macs.map((x) => served[x]).find((x) => x !== undefined);
    const stage = state.events.last(mac);
    return {
      host: m.host, macs: m.macs, role, homeRole: m.role, ip: m.ip, addresses: m.addresses,
      hash: null, lastServedHash: last?.hash ? publishedHash(key, last.hash) : null, changed: null, hashPending: true,
      lastStage: stage?.stage ?? null, lastStageAt: stage?.at ?? null,
    };
  }, ']');
}

/**
 * `head`, then each item's row as a JSON array's elements, then `tail`, as text slices with the event
 * loop given back every SLICE_MS: a 10,000-row answer built and serialised at once is a 50-100 ms stall.
 */
export async function* slicedJsonArray<T>(head: string, items: readonly T[], row: (x: T) => unknown, tail: string): AsyncGenerator<string> {
  let text = head;
  let sliceStart = performance.now();
  for (let i = 0; i < items.length; i++) {
    text += (i ? ',' : '') + JSON.stringify(row(items[i]!));
    if (performance.now() - sliceStart > SLICE_MS) {
      yield text;
      text = '';
      await yieldToLoop();
      sliceStart = performance.now();
    }
  }
  yield `${text}${tail}`;
}
