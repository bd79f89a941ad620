/**
 * Worker-thread side of an off-thread reload (offthread.ts): reads and validates the profiles directory
 * (or parses and validates source texts handed to it) here, so the 10,000-line parse never runs on the server's event loop, then hands the snapshot over in
 * slices — the head first, then CHUNK machines per message, each only after the main thread asks for
 * it — so that deserialising and indexing them on the main thread is a few milliseconds per turn.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { parseInventory } from './index.js';
import { readSources, type SourceFile } from './load.js';
import { ProfileError, RolecastError } from '../errors.js';
import type { WorkerReply } from './offthread.js';

// A profiles directory to read, or source texts already read (the PostgreSQL backend's profiles).
const { dir, sources, label, chunk } = workerData as { dir?: string; sources?: SourceFile[]; label: string; chunk: number };
const port = parentPort!;
const send = (m: WorkerReply) => port.postMessage(m);

try {
  const { head, machines } = parseInventory(sources ?? await readSources(dir!), label);
  let at = 0;
  send({ t: 'head', head, count: machines.length });
  port.on('message', () => {
    const slice = machines.slice(at, at + chunk);
    at += chunk;
    send({ t: 'machines', list: slice, last: at >= machines.length });
    if (at >= machines.length) port.close();
  });
} catch (err) {
  if (err instanceof ProfileError) send({ t: 'issues', issues: [...err.issues] });
  else send({ t: 'error', message: (err as Error).message, ...(err instanceof RolecastError ? { code: err.code } : {}) });
  port.close();
}
