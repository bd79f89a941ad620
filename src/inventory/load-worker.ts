/**
 * Worker-thread side of an off-thread load (offthread.ts): reads and validates the profiles directory
 * (or parses and validates source texts handed to it) here, so the 10,000-line parse never runs on the server's event loop, then hands the snapshot over in
 * slices — the head first, then CHUNK machines per message, each only after the main thread asks for
 * it — so that deserialising and indexing them on the main thread is a few milliseconds per turn.
 * Asked for them afterwards (`hash`, with a render context), it also works out every machine's files
 * hash (src/boot/content.ts filesHashOf) on this thread and sends them in slices by position: the
 * main thread then only looks them up (issue 15: the first GET /api/machines after a start or a reload
 * rendered 10,000 machines' files on the event loop, 1.2-1.8 s).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { InventoryBuilder, parseInventory } from './index.js';
import { readSources, type SourceFile } from './load.js';
import { ProfileError, RolecastError } from '../errors.js';
import type { HashContext, WorkerReply, WorkerRequest } from './offthread.js';
import type { Inventory } from './types.js';

// A profiles directory to read, or source texts already read (the PostgreSQL backend's profiles).
const { dir, sources, label, chunk, nice, hashNice } = workerData as { dir?: string; sources?: SourceFile[]; label: string; chunk: number; nice?: number; hashNice?: number };
const port = parentPort!;

/** This thread's nice value (Linux keeps one per thread); elsewhere, or refused, it stays as it is. */
function niceThread(n: number): void {
  try { setPriority(Number(readlinkSync('/proc/thread-self').split('/').pop()), n); } catch { /* as it is */ }
}
if (nice !== undefined) niceThread(nice);
const send = (m: WorkerReply) => port.postMessage(m);

async function hashAll(inv: Inventory, c: HashContext): Promise<void> {
  // The renderers are loaded only when hashes are asked for: a plain load stays as light as it was.
  const { filesHashOf } = await import('../boot/content.js');
  const ctx = { baseUrl: c.baseUrl, server: c.server, ...(c.serverKey ? { serverKey: Buffer.from(c.serverKey) } : {}) };
  for (let from = 0; from < inv.machines.length; from += chunk) {
    const list = inv.machines.slice(from, from + chunk).map((m) => filesHashOf(inv, ctx, m));
    send({ t: 'hashes', from, list, last: from + chunk >= inv.machines.length });
  }
  if (inv.machines.length === 0) send({ t: 'hashes', from: 0, list: [], last: true });
}

try {
  const { head, machines } = parseInventory(sources ?? await readSources(dir!), label);
  let at = 0;
  send({ t: 'head', head, count: machines.length });
  port.on('message', (req: WorkerRequest) => {
    if (req.t === 'more') {
      const slice = machines.slice(at, at + chunk);
      at += chunk;
      send({ t: 'machines', list: slice, last: at >= machines.length });
    } else if (req.t === 'hash') {
      if (hashNice !== undefined) niceThread(hashNice); // the pending rows (start) or the serving snapshot (reload) answer meanwhile
      // This thread's own copy of the snapshot (the renderers read its indexes); the main thread's is
      // built from the same machines in the same order, so position i is the same machine there.
      const b = new InventoryBuilder(head);
      b.add(machines);
      void hashAll(b.finish(), req.ctx).then(() => port.close(), (err: unknown) => {
        send({ t: 'error', message: `hashing on the loader thread: ${(err as Error).message}` });
        port.close();
      });
    }
  });
} catch (err) {
  if (err instanceof ProfileError) send({ t: 'issues', issues: [...err.issues] });
  else send({ t: 'error', message: (err as Error).message, ...(err instanceof RolecastError ? { code: err.code } : {}) });
  port.close();
}
