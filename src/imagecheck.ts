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

/** The images a boot plan needs: its kernel (per firmware), the role's initrds and rootfs. */
export function planImages(plan: { kernel: string; role: { initrd: readonly string[]; rootfs?: string } }): string[] {
  return [plan.kernel, ...plan.role.initrd, ...(plan.role.rootfs ? [plan.role.rootfs] : [])];
}

export const IMAGE_FIX = 'rolecast images build all (and a role name for Debian role images), or fix the path in the profiles; rolecast images list shows each';

/**
 * Missing images per inventory snapshot, re-checked at most every `ttlMs` (a boot storm asks for every
 * machine's script: a few stat calls per second, not per request).
 */
export class ImageStatus {
  private cache?: { version: string; at: number; missing: MissingImage[] };
  constructor(private readonly imagesDir: string, private readonly ttlMs = 2000, private readonly now = () => Date.now()) {}

  missing(inv: Inventory): MissingImage[] {
    const c = this.cache;
    if (c && c.version === inv.version && this.now() - c.at < this.ttlMs) return c.missing;
    const missing = missingImages(inv, this.imagesDir);
    this.cache = { version: inv.version, at: this.now(), missing };
    return missing;
  }

  /** Of the images `names`, those missing (as "name: file (problem)" lines). */
  problemsOf(inv: Inventory, names: readonly string[]): string[] {
    const miss = this.missing(inv);
    return miss.filter((m) => names.includes(m.name)).map((m) => `${m.name}: ${m.file} (${m.problem})`);
  }
}
