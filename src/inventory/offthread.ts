/**
 * Reload off the event loop: a worker thread reads, parses and validates the profiles (load-worker.ts);
 * the main thread only receives the result, a slice per event-loop turn (a structured clone of 1,000
 * machines is ~2 ms to deserialise, 10,000 at once ~50 ms), indexes and freezes it, and gets the same
 * snapshot loadInventory would build (test/integration/inventory/offthread.test.ts). DHCP, TFTP and HTTP
 * keep being answered meanwhile (issue 15: a 10,000-machine reload stalled them 4 s).
 */
import { Worker } from 'node:worker_threads';
import { createRequire } from 'node:module';
import { resolve as resolvePath } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ProfileError, RolecastError, type ErrorCode, type ProfileIssue } from '../errors.js';
import { buildInventory, InventoryBuilder, type InventoryHead } from './index.js';
import type { Inventory, Machine } from './types.js';
import type { SourceFile } from './load.js';

export type WorkerReply =
  | { t: 'head'; head: InventoryHead; count: number }
  | { t: 'machines'; list: Machine[]; last: boolean }
  | { t: 'issues'; issues: ProfileIssue[] }
  | { t: 'error'; message: string; code?: ErrorCode };

/** The worker could not run (not a verdict on the profiles): the caller loads on its own thread instead. */
export class WorkerUnavailable extends Error {}

/** Machines per message: ~2 ms of deserialising and indexing on the main thread each. */
export const CHUNK = 1000;

interface WorkerInput { dir?: string; sources?: SourceFile[]; label: string; chunk: number }

function startWorker(input: WorkerInput): Worker {
  const entry = new URL('./load-worker.js', import.meta.url);
  if (!import.meta.url.endsWith('.ts')) return new Worker(entry, { workerData: input });
  // Running from source (the tests): the worker registers the TypeScript loader, then imports the .ts entry.
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx/esm/api').replace(/\.cjs$/, '.mjs')).href;
  const boot = `import { register } from ${JSON.stringify(tsx)}; register(); await import(${JSON.stringify(new URL('./load-worker.ts', import.meta.url).href)});`;
  return new Worker(new URL(`data:text/javascript,${encodeURIComponent(boot)}`), { workerData: input });
}

/** loadInventory(dir), on a worker thread. */
export function loadInventoryOffThread(profilesDir: string, chunk = CHUNK): Promise<Inventory> {
  const dir = resolvePath(profilesDir);
  return offThread({ dir, label: dir, chunk });
}

/** buildInventory(sources, label), on a worker thread (the source texts are copied to it: ~1 ms per MB). */
export function buildInventoryOffThread(sources: SourceFile[], label: string, chunk = CHUNK): Promise<Inventory> {
  return offThread({ sources, label, chunk });
}

/** buildInventoryOffThread, or on this thread should no worker start (the same snapshot either way). */
export async function buildInventoryAnywhere(sources: SourceFile[], label: string): Promise<Inventory> {
  try {
    return await buildInventoryOffThread(sources, label);
  } catch (err) {
    if (err instanceof WorkerUnavailable) return buildInventory(sources, label);
    throw err;
  }
}

function offThread(input: WorkerInput): Promise<Inventory> {
  return new Promise<Inventory>((resolve, reject) => {
    let w: Worker;
    try { w = startWorker(input); } catch (err) { reject(new WorkerUnavailable(String(err), { cause: err })); return; }
    let builder: InventoryBuilder | undefined;
    let settled = false;
    const done = (fn: () => void) => { if (!settled) { settled = true; fn(); void w.terminate(); } };
    // The next slice is asked for from setImmediate: pending I/O (DHCP packets, requests) runs in between.
    const more = () => setImmediate(() => { if (!settled) w.postMessage(0); });
    w.on('message', (m: WorkerReply) => {
      if (m.t === 'head') {
        builder = new InventoryBuilder(m.head);
        if (m.count === 0) done(() => resolve(builder!.finish())); else more();
      } else if (m.t === 'machines' && builder) {
        builder.add(m.list);
        if (m.last) done(() => resolve(builder!.finish())); else more();
      } else if (m.t === 'issues') {
        done(() => reject(new ProfileError(m.issues)));
      } else if (m.t === 'error') {
        done(() => reject(m.code ? new RolecastError(m.code, m.message) : new Error(m.message)));
      }
    });
    w.on('error', (err) => done(() => reject(new WorkerUnavailable(`profile loader thread failed: ${err.message}`, { cause: err }))));
    w.on('exit', (code) => done(() => reject(new WorkerUnavailable(`profile loader thread exited (${code}) before it answered`))));
  });
}
