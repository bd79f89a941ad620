/**
 * Worker-thread side of an off-thread reload (offthread.ts): reads and validates the profiles directory
 * here, so the 10,000-line parse never runs on the server's event loop, then hands the snapshot over in
 * slices — the head first, then CHUNK machines per message, each only after the main thread asks for
 * it — so that deserialising and indexing them on the main thread is a few milliseconds per turn.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { parseInventory } from './index.js';
import { readSources } from './load.js';
import { ProfileError, RolecastError } from '../errors.js';
import type { WorkerReply } from './offthread.js';

const { dir, chunk } = workerData as { dir: string; chunk: number };
const port = parentPort!;
const send = (m: WorkerReply) => port.postMessage(m);

try {
  const { head, machines } = parseInventory(await readSources(dir), dir);
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
