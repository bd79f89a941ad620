/**
 * What each machine was last served: the content hash of its generated files at its last rootfs fetch,
 * kept in <data>/served.json. `rolecast diff` and GET /api/machines compare it with what the current
 * snapshot would render, to say which machines change on their next boot.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { writeAtomic } from './fsutil.js';
import { join } from 'node:path';

export interface ServedEntry {
  host?: string;
  role: string;
  hash: string;
  at: string;
}

export type ServedRecord = Record<string, ServedEntry>; // by MAC

export function servedPath(dataDir: string): string {
  return join(dataDir, 'served.json');
}

export async function readServed(dataDir: string): Promise<ServedRecord> {
  try {
    const parsed: unknown = JSON.parse(await readFile(servedPath(dataDir), 'utf8'));
    return typeof parsed === 'object' && parsed !== null ? (parsed as ServedRecord) : {};
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw err;
  }
}

/** Atomic replace: a crash leaves either the old or the new record, never half of one. */
export async function writeServed(dataDir: string, rec: ServedRecord): Promise<void> {
  await mkdir(dataDir, { recursive: true });
  const sorted = Object.fromEntries(Object.entries(rec).sort(([a], [b]) => a.localeCompare(b)));
  await writeAtomic(servedPath(dataDir), `${JSON.stringify(sorted, null, 2)}\n`);
}
