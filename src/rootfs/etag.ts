/**
 * The ETag of a composed rootfs is a content hash of its inputs: the base image's sha256 (computed once
 * per path+size+mtime, streamed) and the machine's file hash. Same inputs, same bytes, same ETag — and
 * the same value `rolecast diff` compares.
 */
import { createHash } from 'node:crypto';
import { sha256File, statShared } from '../fsutil.js';
import type { FileVersion } from './tarindex.js';

const cache = new Map<string, { key: string; sha: Promise<string> }>();

/**
 * A file's sha256, once per version (size, mtime, inode); a boot storm's first requests share one pass.
 * `st`: the caller's stat of `path` (one per rootfs request, shared by every cache it consults).
 */
export async function fileSha256(path: string, st?: FileVersion): Promise<string> {
  st ??= await statShared(path);
  const key = `${st.size}:${st.mtimeMs}:${st.ino}`;
  const hit = cache.get(path);
  if (hit?.key === key) return hit.sha;
  const sha = sha256File(path);
  cache.set(path, { key, sha });
  sha.catch(() => { if (cache.get(path)?.sha === sha) cache.delete(path); });
  return sha;
}

/**
 * Bumped when the byte layout of a composed rootfs changes (v2: base members spliced verbatim; v3:
 * rolecast-capture and the manifest added).
 */
const LAYOUT = 'v3';

export function rootfsEtag(baseSha: string | undefined, contentHash: string, format: string): string {
  return `"${createHash('sha256').update(`${LAYOUT}\0${baseSha ?? 'none'}\0${contentHash}\0${format}`).digest('hex').slice(0, 32)}"`;
}
