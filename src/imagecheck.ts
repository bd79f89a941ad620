/**
 * Which of the inventory's images are really there. `rolecast serve` checks at start and on every reload:
 * a missing image is listed in the log and on /healthz ("degraded"), and planBoot's callers can tell a machine
 * it cannot boot instead of letting its firmware retry a 404 forever.
 */
import { accessSync, constants, statSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import type { Image, Inventory } from './inventory/types.js';

export function imageFile(img: Image, imagesDir: string): string {
  return isAbsolute(img.path) ? img.path : join(imagesDir, img.path);
}

export interface MissingImage {
  name: string;
  file: string;
  /** "missing", "not a file", or "not readable" (permissions: the service user must read it). */
  problem: string;
}

function problemOf(file: string): string | undefined {
  let st;
  try { st = statSync(file); } catch { return 'missing'; }
  if (!st.isFile()) return 'not a file';
  try { accessSync(file, constants.R_OK); } catch { return 'not readable'; }
  return undefined;
}

/** Every image the inventory names whose file is absent or unreadable (sorted by name). */
export function missingImages(inv: Inventory, imagesDir: string): MissingImage[] {
  const out: MissingImage[] = [];
  for (const img of Object.values(inv.images)) {
    const file = imageFile(img, imagesDir);
    const problem = problemOf(file);
    if (problem) out.push({ name: img.name, file, problem });
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}
