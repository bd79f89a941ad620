/** File helpers shared by the profile editor, the image builders and the data directory. */
import { createHash } from 'node:crypto';
import { createReadStream, readlinkSync, realpathSync, statSync } from 'node:fs';
import type { Stats } from 'node:fs';
import { copyFile, open, rename, rm, writeFile, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * Replace `path` so a reader (or a crash) sees the old file or the new one, never half of one: `fill`
 * writes a temporary file beside it, which is fsync'd and renamed over it, and the directory is synced;
 * the temporary never survives.
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
    // The rename itself made durable: after a power cut the directory could still name the old file.
    const dir = await open(dirname(path), 'r');
    try {
      await dir.sync();
    } catch {
      // a filesystem that cannot sync a directory (some network ones): the rename stands as it is
    } finally {
      await dir.close();
    }
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

/** A synchronous lookup as a promise (settled at once): the serving paths' callers stay as they are. */
function onThisThread<T>(lookup: (path: string) => T): (path: string) => Promise<T> {
  return (path) => {
    try {
      return Promise.resolve(lookup(path));
    } catch (err) {
      return Promise.reject(err as Error);
    }
  };
}

/**
 * stat(2), readlink(2) and realpath(3) of the serving paths (images, loaders, their directories), made on
 * the calling thread, as nginx makes its stat and open calls: of a hot dentry they cost microseconds,
 * while the thread pool's hand-off costs two cross-thread wake-ups, and on a saturated box (a boot storm)
 * the woken pool thread took the core from the main thread, which then waited its turn again: the storm's
 * CPU profile had these calls among the main thread's largest items. Every call asks the kernel (no cache):
 * a file replaced between two calls is seen at once. Results are read-only.
 */
export const statShared: (path: string) => Promise<Stats> = onThisThread((p) => statSync(p));
export const readlinkShared: (path: string) => Promise<string> = onThisThread((p) => readlinkSync(p));
export const realpathShared: (path: string) => Promise<string> = onThisThread((p) => realpathSync.native(p));

/** Which version of a file a response was planned from: its inode, size and modification time. */
export interface FileIdentity { ino: number; size: number; mtimeMs: number }

/** Open `path` for reading, checking (when given) it is still `version`: a replaced file is an error, not mixed bytes. */
export async function openFileVersion(path: string, version?: FileIdentity): Promise<FileHandle> {
  const fh = await open(path, 'r');
  if (version) {
    const st = await fh.stat();
    if (st.ino !== version.ino || st.size !== version.size || st.mtimeMs !== version.mtimeMs) {
      await fh.close();
      throw new Error(`${path} changed after this response was planned (a new image version): the client retries and gets the new one`);
    }
  }
  return fh;
}

export interface SharedFile { fh: FileHandle; release(): void }

/** A handle shared by the transfers that send the same version of a file. */
interface SharedHandle { fh: Promise<FileHandle>; refs: number; idle?: NodeJS.Timeout }

const sharedHandles = new Map<string, SharedHandle>();

/** An unused shared handle stays open this long (a storm's next request reuses it), then closes. */
const HANDLE_IDLE_MS = 5000;

/**
 * A file for reading, shared with the other transfers of the same version of it (path, inode, size,
 * mtime): a boot storm's kernel, initrd, loader and base image are opened once, not open, fstat and
 * close per transfer (three thread-pool round trips each). Only a known version is shared, and it is
 * checked when the handle is opened, as openFileVersion does: a held descriptor keeps its inode, so a
 * later file at that path with the same inode number is that very file. Readers must read by position
 * (pread, sendfile with an offset, an engine's dup): sharers never move each other's offset. `release`
 * once done; the handle closes when its last sharer has been gone for HANDLE_IDLE_MS.
 */
export async function acquireFileVersion(path: string, version?: FileIdentity): Promise<SharedFile> {
  if (!version) {
    const fh = await openFileVersion(path);
    return { fh, release: () => { void fh.close().catch(() => undefined); } };
  }
  const key = `${version.ino}:${version.size}:${version.mtimeMs}\0${path}`;
  let entry = sharedHandles.get(key);
  if (!entry) {
    const made: SharedHandle = { fh: openFileVersion(path, version), refs: 0 };
    entry = made;
    sharedHandles.set(key, made);
    made.fh.catch(() => { if (sharedHandles.get(key) === made) sharedHandles.delete(key); });
  }
  const h = entry;
  h.refs++;
  if (h.idle) { clearTimeout(h.idle); h.idle = undefined; }
  let fh: FileHandle;
  try {
    fh = await h.fh;
  } catch (err) {
    h.refs--;
    throw err;
  }
  let released = false;
  return {
    fh,
    release: () => {
      if (released) return;
      released = true;
      if (--h.refs > 0) return;
      h.idle = setTimeout(() => {
        if (h.refs > 0) return;
        if (sharedHandles.get(key) === h) sharedHandles.delete(key);
        void fh.close().catch(() => undefined);
      }, HANDLE_IDLE_MS);
      h.idle.unref();
    },
  };
}
