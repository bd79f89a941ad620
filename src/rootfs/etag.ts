/**
 * The ETag of a composed rootfs is a content hash of its inputs: the base image's sha256 (computed once
 * per path+size+mtime, streamed) and the machine's file hash. Same inputs, same bytes, same ETag — and
 * the same value `rolecast diff` compares.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';

const cache = new Map<string, { key: string; sha: string }>();

export async function fileSha256(path: string): Promise<string> {
  const st = await stat(path);
  const key = `${st.size}:${st.mtimeMs}:${st.ino}`;
  const hit = cache.get(path);
  if (hit?.key === key) return hit.sha;
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  const sha = h.digest('hex');
  cache.set(path, { key, sha });
  return sha;
}

export function rootfsEtag(baseSha: string | undefined, contentHash: string, format: string): string {
  return `"${createHash('sha256').update(`${baseSha ?? 'none'}\0${contentHash}\0${format}`).digest('hex').slice(0, 32)}"`;
}
