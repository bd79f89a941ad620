/**
 * Reload off the event loop: a worker thread reads, parses and validates the profiles (load-worker.ts);
 * the main thread only receives the result, a slice per event-loop turn (a structured clone of 1,000
 * machines is ~2 ms to deserialise, 10,000 at once ~50 ms), indexes and freezes it, and gets the same
 * snapshot loadInventory would build (test/integration/inventory/offthread.test.ts). DHCP, TFTP and HTTP
 * keep being answered meanwhile (issue 15: a 10,000-machine reload stalled them 4 s).
 */
import type { Worker } from 'node:worker_threads';
import { resolve as resolvePath } from 'node:path';
import { startModuleWorker } from '../worker.js';
import { ProfileError, RolecastError, type ErrorCode, type ProfileIssue } from '../errors.js';
import { buildInventory, InventoryBuilder, type InventoryHead } from './index.js';
import type { Inventory, Machine } from './types.js';
import type { SourceFile } from './load.js';

export type WorkerReply =
  | { t: 'head'; head: InventoryHead; count: number }
  | { t: 'machines'; list: Machine[]; last: boolean }
  | { t: 'hashes'; from: number; list: (string | null)[]; last: boolean }
  | { t: 'issues'; issues: ProfileIssue[] }
  | { t: 'error'; message: string; code?: ErrorCode };

/** The render context the loader thread hashes machines' files with (src/boot/content.ts filesHashOf). */
export interface HashContext { baseUrl: string; server: string; serverKey?: Uint8Array }

export type WorkerRequest = { t: 'more' } | { t: 'hash'; ctx: HashContext };

/** The worker could not run (not a verdict on the profiles): the caller loads on its own thread instead. */
export class WorkerUnavailable extends Error {}

/** Machines per message: ~2 ms of deserialising and indexing on the main thread each. */
export const CHUNK = 1000;

interface WorkerInput { dir?: string; sources?: SourceFile[]; label: string; chunk: number; nice?: number; hashNice?: number }

/**
 * The loader thread's nice value when nothing waits for it (a reload, with the last snapshot serving; the
 * hashing after a start, with the pending rows answering): the main and DHCP threads get a core first
 * (a 10,000-machine reload's ~1.5 s of loader CPU made the main thread wait ~120 ms for one on 2 cores).
 */
export const LOADER_NICE = 10;

/**
 * The loader thread's V8 young generation (MB), as the DHCP thread's (DHCP_YOUNG_MB): its parse and renders
 * make garbage fast, and V8's default let ~20-25 MB of it stand in the process's peak RSS at start (bench:scale
 * 10,000 machines, same-run A/B: peak 240/246 MB capped, 266/269 uncapped; start 1.21/1.69 s vs 1.13/1.90 s).
 */
export const LOADER_YOUNG_MB = 8;

function startWorker(input: WorkerInput): Worker {
  return startModuleWorker(new URL('./load-worker.js', import.meta.url), { hashNice: LOADER_NICE, ...input }, { maxYoungGenerationSizeMb: LOADER_YOUNG_MB });
}

/** loadInventory(dir), on a worker thread. */
export function loadInventoryOffThread(profilesDir: string, chunk = CHUNK): Promise<Inventory> {
  const load = startLoad({ dir: resolvePath(profilesDir), label: resolvePath(profilesDir), chunk });
  return load.inventory.finally(() => load.close());
}

/** buildInventory(sources, label), on a worker thread (the source texts are copied to it: ~1 ms per MB). */
export function buildInventoryOffThread(sources: SourceFile[], label: string, chunk = CHUNK): Promise<Inventory> {
  const load = startLoad({ sources, label, chunk });
  return load.inventory.finally(() => load.close());
}

/** Machine hashes wanted with a snapshot built off-thread (buildInventoryAnywhere). */
export interface HashRequest {
  /** The render context (asked for only when the hashes are worked out). */
  ctx(): Promise<HashContext>;
  /** False for a snapshot that will not go live (the version already serving): no hashes then. */
  wanted(inv: Inventory): boolean;
  /** The hashes coming for `inv` under `ctx` (the API takes them instead of rendering: expectHashes). */
  remember(inv: Inventory, ctx: HashContext, hashes: Promise<(string | null)[]>): void;
}

/**
 * buildInventoryOffThread, or on this thread should no worker start (the same snapshot either way).
 * With `hashing`, a snapshot of LOADER_HASHES_MIN machines or more also gets every machine's files hash
 * from the loader thread, as a directory's reload does (watch.ts): the main thread renders none of them.
 */
export async function buildInventoryAnywhere(sources: SourceFile[], label: string, hashing?: HashRequest): Promise<Inventory> {
  const load = startLoad({ sources, label, chunk: CHUNK });
  let inv: Inventory;
  try {
    inv = await load.inventory;
  } catch (err) {
    load.close();
    if (err instanceof WorkerUnavailable) return buildInventory(sources, label);
    throw err;
  }
  if (!hashing || inv.machines.length < LOADER_HASHES_MIN || !hashing.wanted(inv)) {
    load.close();
    return inv;
  }
  hashing.ctx().then((c) => {
    const hashes = load.hashes(c).finally(() => load.close());
    hashes.catch(() => undefined); // not handed over: the API works them out itself
    hashing.remember(inv, c, hashes);
  }, () => load.close());
  return inv;
}

/**
 * Below this many machines the main thread hashes them itself (a few milliseconds, in slices): asking the
 * loader thread would first load the renderers there, which costs more than it saves.
 */
export const LOADER_HASHES_MIN = 1000;

/** A load running on a worker thread. */
export interface OffThreadLoad {
  /** The snapshot, once every machine has arrived (rejects with the ProfileError of a broken set). */
  inventory: Promise<Inventory>;
  /**
   * After the snapshot: every machine's files hash under `ctx`, by position in inv.machines (null where
   * its files cannot be rendered), worked out on the loader thread, which then ends.
   */
  hashes(ctx: HashContext): Promise<(string | null)[]>;
  /** Ends the thread (a load whose hashes are not wanted, or no longer). */
  close(): void;
}

/**
 * Loads the profiles directory on a worker thread; the thread stays until hashes() or close(). `nice`: the
 * thread's priority from the start (a reload: LOADER_NICE); it takes LOADER_NICE for hashing either way.
 */
export function startOffThreadLoad(profilesDir: string, chunk = CHUNK, opts: { nice?: number } = {}): OffThreadLoad {
  const dir = resolvePath(profilesDir);
  return startLoad({ dir, label: dir, chunk, ...(opts.nice !== undefined ? { nice: opts.nice } : {}) });
}

function startLoad(input: WorkerInput): OffThreadLoad {
  let w: Worker | undefined;
  let closed = false;
  let hashWaiter: { resolve: (h: (string | null)[]) => void; reject: (e: unknown) => void; list: (string | null)[] } | undefined;
  const close = () => { if (!closed) { closed = true; void w?.terminate(); } };
  const failHashes = (err: unknown) => { hashWaiter?.reject(err); hashWaiter = undefined; };
  const inventory = new Promise<Inventory>((resolve, reject) => {
    try { w = startWorker(input); } catch (err) { closed = true; reject(new WorkerUnavailable(String(err), { cause: err })); return; }
    const worker = w;
    let builder: InventoryBuilder | undefined;
    let settled = false;
    const done = (fn: () => void) => { if (!settled) { settled = true; fn(); } };
    const fail = (err: unknown) => { done(() => reject(err)); failHashes(err); close(); };
    // The next slice is asked for from setImmediate: pending I/O (DHCP packets, requests) runs in between.
    const more = () => setImmediate(() => { if (!closed) worker.postMessage({ t: 'more' } satisfies WorkerRequest); });
    worker.on('message', (m: WorkerReply) => {
      if (m.t === 'head') {
        builder = new InventoryBuilder(m.head);
        if (m.count === 0) done(() => resolve(builder!.finish())); else more();
      } else if (m.t === 'machines' && builder) {
        builder.add(m.list);
        if (m.last) done(() => resolve(builder!.finish())); else more();
      } else if (m.t === 'hashes' && hashWaiter) {
        for (let i = 0; i < m.list.length; i++) hashWaiter.list[m.from + i] = m.list[i]!;
        if (m.last) { hashWaiter.resolve(hashWaiter.list); hashWaiter = undefined; close(); }
      } else if (m.t === 'issues') {
        fail(new ProfileError(m.issues));
      } else if (m.t === 'error') {
        fail(m.code ? new RolecastError(m.code, m.message) : new Error(m.message));
      }
    });
    worker.on('error', (err) => fail(new WorkerUnavailable(`profile loader thread failed: ${err.message}`, { cause: err })));
    worker.on('exit', (code) => { if (!closed) fail(new WorkerUnavailable(`profile loader thread exited (${code}) before it answered`)); else failHashes(new WorkerUnavailable('profile loader thread ended before the hashes')); });
  });
  const hashes = async (ctx: HashContext): Promise<(string | null)[]> => {
    const inv = await inventory;
    if (closed || !w) throw new WorkerUnavailable('profile loader thread already ended');
    if (hashWaiter) throw new Error('hashes already asked for');
    const p = new Promise<(string | null)[]>((resolve, reject) => { hashWaiter = { resolve, reject, list: new Array<string | null>(inv.machines.length).fill(null) }; });
    w.postMessage({ t: 'hash', ctx } satisfies WorkerRequest);
    return p;
  };
  return { inventory, hashes, close };
}
