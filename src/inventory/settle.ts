/**
 * Two checks before a watched edit of the profiles goes live (issue 16: a half-written machines.yaml
 * that happened to parse was applied, and the inventory dropped from 10 machines to 2).
 *
 * - settle: the profile files' names, sizes and mtimes (a stamp) must be the same at two looks a settle
 *   period apart and again after the load, so a file still being written is never read half-way.
 *   Comparing stamps rather than mtime against the clock keeps working with skewed or copied mtimes.
 * - drop guard: a reload that would remove more than a set share of the machines is held back until an
 *   operator confirms it (SIGHUP, `rolecast reload --force`); smaller edits apply as before.
 */
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ROLES_DIR } from './load.js';
import type { Inventory } from './types.js';

/** A fingerprint of the profile files as the file system reports them (no contents read). */
export async function profileStamp(dir: string): Promise<string> {
  const parts: string[] = [];
  for (const d of [dir, join(dir, ROLES_DIR)]) {
    let names: string[];
    try {
      names = (await readdir(d)).filter((n) => /\.ya?ml$/.test(n)).sort();
    } catch {
      parts.push(`${d}: unreadable`);
      continue;
    }
    for (const n of names) {
      const st = await stat(join(d, n)).catch(() => undefined);
      parts.push(st ? `${d}/${n} ${st.size} ${st.mtimeMs} ${st.ino}` : `${d}/${n} gone`);
    }
  }
  return parts.join('\n');
}

export interface DropCheck {
  /** Hosts in the current snapshot that the new one no longer has. */
  dropped: string[];
  share: number;
}

/** Which machines a swap from `prev` to `next` would drop, and what share of `prev` that is. */
export function droppedMachines(prev: Inventory, next: Inventory): DropCheck {
  const dropped = prev.machines.filter((m) => !next.byHost.has(m.host)).map((m) => m.host);
  return { dropped, share: prev.machines.length ? dropped.length / prev.machines.length : 0 };
}
