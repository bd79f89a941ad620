/** File helpers shared by the profile editor, the image builders and the data directory. */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import type { Stats } from 'node:fs';
import { copyFile, open, readlink, realpath, rename, rm, stat, writeFile } from 'node:fs/promises';

/**
 * Replace `path` so a reader (or a crash) sees the old file or the new one, never half of one: `fill`
 * writes a temporary file beside it, which is fsync'd and renamed over it; the temporary never survives.
 */
async function replaceAtomic(path: string, fill: (tmp: string) => Promise<void>): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    await fill(tmp);
    const fh = await open(tmp, 'r+');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } finally {
    await rm(tmp, { force: true });
  }
}

export function writeAtomic(path: string, data: Buffer | string, mode = 0o644): Promise<void> {
  return replaceAtomic(path, (tmp) => writeFile(tmp, data, { mode }));
}

export function copyAtomic(from: string, to: string): Promise<void> {
  return replaceAtomic(to, (tmp) => copyFile(from, tmp));
}

export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 })) h.update(chunk as Buffer);
  return h.digest('hex');
}

/**
 * One lookup for a burst of identical ones: a call made while the same key's lookup is in flight shares
 * its answer; a call made after it settled asks again, so no answer is older than a lookup that was
 * running when the call came (no cache, no TTL). A boot storm's rootfs requests all stat, readlink and
 * realpath the same base image at once: each such syscall costs a thread-pool hand-off and two wake-ups,
 * paid once per burst instead of once per request.
 */
export function singleFlight<T>(lookup: (key: string) => Promise<T>): (key: string) => Promise<T> {
  const inFlight = new Map<string, Promise<T>>();
  return (key) => {
    const running = inFlight.get(key);
    if (running) return running;
    const p = lookup(key).finally(() => inFlight.delete(key));
    inFlight.set(key, p);
    return p;
  };
}

/** stat(2), readlink(2) and realpath(3) shared by concurrent callers (see singleFlight); results are read-only. */
export const statShared: (path: string) => Promise<Stats> = singleFlight((p) => stat(p));
export const readlinkShared: (path: string) => Promise<string> = singleFlight((p) => readlink(p));
export const realpathShared: (path: string) => Promise<string> = singleFlight((p) => realpath(p));
