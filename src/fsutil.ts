/** File helpers shared by the profile editor, the image builders and the data directory. */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, open, rename, rm, writeFile } from 'node:fs/promises';

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
