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
import { effectiveRoleName, resolveMachine } from '../inventory/resolve.js';
import { renderHosts } from '../render/hostfiles.js';
import { realServersOf, warmVirtualServerText } from '../render/keepalived.js';
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

/** fn over every item, giving the event loop back (`turn`) every SLICE_MS. */
export async function sliced<T>(items: readonly T[], fn: (x: T) => void, turn: () => Promise<unknown> = yieldToLoop): Promise<void> {
  let sliceStart = performance.now();
  for (const x of items) {
    fn(x);
    if (performance.now() - sliceStart > SLICE_MS) {
      await turn();
      sliceStart = performance.now();
    }
  }
}

// GET /api/machines and /api/fleet answers being written (their rows ready): the snapshot's background
// warm-up lets them have the event loop first, each of its slices waiting up to BACKGROUND_WAIT_MS for
// them. Taking turns one for one, a first request right after a start or a reload shared the loop with
// ~0.3 s of warm-up slices and took 150-300 ms instead of tens.
let foreground = 0;
const waiting = new Set<() => void>();
const BACKGROUND_WAIT_MS = 20;

/** `gen` counted as a request in the foreground while it runs. */
export async function* inForeground<T>(gen: AsyncGenerator<T>): AsyncGenerator<T> {
  foreground++;
  try {
    yield* gen;
  } finally {
    if (--foreground === 0) for (const w of [...waiting]) w();
  }
}

/** A background slice's turn: the event loop given back, and then to the foreground requests for a while. */
export async function backgroundTurn(): Promise<void> {
  await yieldToLoop();
  if (foreground === 0) return;
  await new Promise<void>((resolve) => {
    const done = () => { clearTimeout(timer); waiting.delete(done); resolve(); };
    const timer = setTimeout(done, BACKGROUND_WAIT_MS);
    waiting.add(done);
  });
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
  // The per-snapshot pieces every machine's files share (each machine resolved, /etc/hosts, the sites'
  // real servers) are O(N) each: built first, each in its own turn, instead of all inside the first
  // load balancer's row (a 150 ms step at 10,000 machines, 300-500 ms on a busy host, after every reload).
  // They need no files hash: made while the loader thread's hashes are still coming (right after a
  // start, the first /files or rootfs request of a load balancer would otherwise make them in one go).
  await sliced(inv.machines, (m) => resolveMachine(inv, m), backgroundTurn);
  renderHosts(inv);
  await backgroundTurn();
  realServersOf(inv, '');
  await backgroundTurn();
  // Each site's real-server block, a few hundred real servers a turn (the first load balancer's files need them all).
  for (const site of Object.keys(inv.sites)) await warmVirtualServerText(inv, site, backgroundTurn);
  const handed = on ? await on.catch(() => undefined) : undefined;
  if (handed && !hasSeededHashes(inv, ctx)) seedFilesHashes(inv, ctx, handed);
  await sliced(inv.machines, (m) => plannedRow(inv, ctx, m), backgroundTurn);
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
  let k = viewKeys.get(images);
  if (k === undefined) {
    const sorted = (o: object): unknown => Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([key, v]) => [key, v && typeof v === 'object' ? sorted(v as object) : v]));
    k = JSON.stringify(sorted(images));
    viewKeys.set(images, k);
  }
  return k;
}
// A view is loaded per request and asked for its key once per machine: worked out once per view object.
const viewKeys = new WeakMap<ImageView, string>();

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

/** Each machine's row as JSON text up to its live fields (by position), and the unpublished hash `changed` compares with. */
interface Heads { texts: string[]; hashes: (string | null)[] }

// Per snapshot and publishing key, then per render context, image view and kind (pending or hashed).
const headCache = new WeakMap<Inventory, WeakMap<Buffer, Map<string, Promise<Heads>>>>();

/**
 * The row heads of this snapshot for this render context, image view and key: built once, in slices
 * (a plan per machine, its hash published, the row serialised up to its live fields), so that a request
 * only appends each machine's live fields (last served hash, last stage) to text made beforehand.
 * Pending heads (hashes still coming) carry `"hash":null` and are dropped once the hashed ones are made.
 */
function headsOf(inv: Inventory, ctx: RenderContext, key: Buffer, pending: boolean): Promise<Heads> {
  let byKey = headCache.get(inv);
  if (!byKey) { byKey = new WeakMap(); headCache.set(inv, byKey); }
  let kinds = byKey.get(key);
  if (!kinds) { kinds = new Map(); byKey.set(key, kinds); }
  const at = `${renderKeyOf(ctx)}\0${viewKey(ctx.images)}`;
  const name = `${pending ? 'pending' : 'hashed'}\0${at}`;
  let p = kinds.get(name);
  if (!p) {
    if (kinds.size >= 8) kinds.clear(); // image versions come and go: keep a few views, not all
    const map = kinds;
    p = buildHeads(inv, ctx, key, pending);
    p.then(() => { if (!pending) map.delete(`pending\0${at}`); }, () => { map.delete(name); });
    kinds.set(name, p);
  }
  return p;
}

/**
 * The role rootfsPlanOf names for a machine, without a plan: the plan of a machine's own first MAC
 * boots, or ignores it, with the role effectiveRoleName names (src/boot/plan.ts chooseRole, resolveMachine;
 * a role's name is its key in inv.roles). A MAC that another machine holds (no validated snapshot has
 * one) asks the plan.
 */
function pendingRole(inv: Inventory, ctx: RenderContext, m: Machine): string {
  const role = effectiveRoleName(m);
  return inv.byMac.get(m.macs[0]!) === m && inv.roles[role]?.name === role ? role : rootfsPlanOf(inv, ctx, m).role;
}

async function buildHeads(inv: Inventory, ctx: RenderContext, key: Buffer, pending: boolean): Promise<Heads> {
  if (!pending) await warmContentHashes(inv, ctx);
  const texts = new Array<string>(inv.machines.length);
  const hashes = new Array<string | null>(inv.machines.length).fill(null);
  let i = 0;
  await sliced(inv.machines, (m) => {
    const { role, hash } = pending ? { role: pendingRole(inv, ctx, m), hash: null } : plannedRow(inv, ctx, m);
    const text = JSON.stringify({ host: m.host, macs: m.macs, role, homeRole: m.role, ip: m.ip, addresses: m.addresses, hash: hash ? publishedHash(key, hash) : null });
    texts[i] = text.slice(0, -1);
    hashes[i] = hash;
    i++;
  }, backgroundTurn);
  return { texts, hashes };
}

/**
 * Makes this snapshot's /api/machines rows ready for this render context (with its image view and the
 * server key as the publishing key): after the start's or a reload's warm-up, so the first request only
 * appends the live fields. `pending`: the rows shown while the files hashes are still coming.
 */
export async function warmMachineRows(inv: Inventory, ctx: RenderContext, opts: { pending?: boolean } = {}): Promise<void> {
  if (!ctx.serverKey) return;
  await headsOf(inv, ctx, ctx.serverKey, opts.pending === true);
}

// A row's live fields when the machine was never served and has no stage yet (most of them).
const QUIET = ',"lastServedHash":null,"changed":null,"lastStage":null,"lastStageAt":null}';
const QUIET_PENDING = ',"lastServedHash":null,"changed":null,"hashPending":true,"lastStage":null,"lastStageAt":null}';

/**
 * GET /api/machines as JSON text: one row per machine (host, macs, role, homeRole, ip, addresses, hash,
 * lastServedHash, changed, lastStage, lastStageAt), in slices with the event loop given back between
 * them. The rows up to their live fields are made once per snapshot (headsOf); a request appends the
 * live fields. While the files hashes are still coming (hashesPending), each row has `hash` and
 * `changed` null and `hashPending: true` — nothing is said about the content before it is known (a
 * hash guessed or rendered here would cost the event loop the second the loader thread is saving it).
 * The route says so in a header too.
 */
export async function* machineApiJson(inv: Inventory, ctx: RenderContext, state: State, key: Buffer, pending = hashesPending(inv, ctx)): AsyncGenerator<string> {
  const { texts, hashes } = await headsOf(inv, ctx, key, pending);
  const served = state.served.all();
  yield* inForeground(slicedArray('[', inv.machines, (m, i) => {
    let last: Served[string] | undefined;
    for (const x of m.macs) { last = served[x]; if (last !== undefined) break; }
    const stage = state.events.last(m.macs[0]!);
    if (!last && !stage) return texts[i]! + (pending ? QUIET_PENDING : QUIET);
    const hash = hashes[i]!;
    const lastServedHash = last?.hash ? publishedHash(key, last.hash) : null;
    const live = pending
      ? { lastServedHash, changed: null, hashPending: true, lastStage: stage?.stage ?? null, lastStageAt: stage?.at ?? null }
      : { lastServedHash, changed: last && hash !== null ? last.hash !== hash : null, lastStage: stage?.stage ?? null, lastStageAt: stage?.at ?? null };
    return `${texts[i]!},${JSON.stringify(live).slice(1)}`;
  }, ']'));
}

/**
 * `head`, then each item's row as a JSON array's elements, then `tail`, as text slices with the event
 * loop given back every SLICE_MS: a 10,000-row answer built and serialised at once is a 50-100 ms stall.
 */
export function slicedJsonArray<T>(head: string, items: readonly T[], row: (x: T) => unknown, tail: string): AsyncGenerator<string> {
  return slicedArray(head, items, (x) => JSON.stringify(row(x)), tail);
}

/** slicedJsonArray with each element's JSON text made by `text`. */
export async function* slicedArray<T>(head: string, items: readonly T[], text: (x: T, i: number) => string, tail: string): AsyncGenerator<string> {
  let out = head;
  let sliceStart = performance.now();
  for (let i = 0; i < items.length; i++) {
    out += (i ? ',' : '') + text(items[i]!, i);
    if (performance.now() - sliceStart > SLICE_MS) {
      yield out;
      out = '';
      await yieldToLoop();
      sliceStart = performance.now();
    }
  }
  yield `${out}${tail}`;
}
