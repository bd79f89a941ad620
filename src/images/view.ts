/**
 * What the image store says now, as plain data for planBoot's rootfs decision: each role image's
 * current version (the <name>.tar link) and the versions staged on single machines (`images try`).
 * Loaded by the edges (routes, CLI) before they ask the plan, so the decision itself stays pure.
 */
import { readlinkShared, statShared } from '../fsutil.js';
import { basename, dirname, isAbsolute, join } from 'node:path';
import type { Inventory } from '../inventory/types.js';
import { readHistory, versionPattern } from './versions.js';

export interface ImageView {
  /** image name → current version file (<name>-<sha12>.tar). */
  current: Record<string, string>;
  /** image name → host → version file staged on that host. */
  pins: Record<string, Record<string, string>>;
}

const pinCache = new Map<string, { key: string; pins: Record<string, string> }>();

async function pinsOf(dir: string, name: string): Promise<Record<string, string>> {
  const file = join(dir, `${name}.history.json`);
  const st = await statShared(file).catch(() => undefined);
  if (!st) return {};
  const key = `${st.size}:${st.mtimeMs}:${st.ino}`;
  const hit = pinCache.get(file);
  if (hit?.key === key) return hit.pins;
  const pins = (await readHistory(dir, name)).pins;
  pinCache.set(file, { key, pins });
  return pins;
}

/** A role image's link and history, found from the inventory (per snapshot). */
interface UsedImage { name: string; path: string; dir: string; stem: string }

const usedCache = new WeakMap<Inventory, Map<string, UsedImage[]>>();

function usedImages(inv: Inventory, imagesDir: string): UsedImage[] {
  let perInv = usedCache.get(inv);
  if (!perInv) { perInv = new Map(); usedCache.set(inv, perInv); }
  let used = perInv.get(imagesDir);
  if (used) return used;
  used = [];
  for (const name of new Set(Object.values(inv.roles).map((r) => r.rootfs).filter((x): x is string => x !== undefined))) {
    const img = inv.images[name];
    if (!img?.path.endsWith('.tar')) continue;
    const path = isAbsolute(img.path) ? img.path : join(imagesDir, img.path);
    used.push({ name, path, dir: dirname(path), stem: basename(path, '.tar') });
  }
  perInv.set(imagesDir, used);
  return used;
}

async function readView(used: readonly UsedImage[]): Promise<ImageView> {
  const view: ImageView = { current: {}, pins: {} };
  await Promise.all(used.map(async ({ name, path, dir, stem }) => {
    const target = await readlinkShared(path).then(basename, () => undefined);
    if (target && versionPattern(stem).test(target)) view.current[name] = target;
    const pins = await pinsOf(dir, stem).catch(() => ({}));
    if (Object.keys(pins).length) view.pins[name] = pins;
  }));
  return view;
}

/**
 * A directory's identity and last change. Every image operation changes the directory that holds the
 * image (src/images/versions.ts: links are swapped and the history replaced by rename, never written in
 * place), so an unchanged stamp means the same links and the same pins.
 */
const stampOf = (st: { ino: number; mtimeMs: number; ctimeMs: number }) => `${st.ino}:${st.mtimeMs}:${st.ctimeMs}`;

/**
 * A stamp this recent may not tell two changes apart (file times come from a coarse clock, and some
 * filesystems keep whole seconds): a view read then is used once and not kept, as git treats a "racily
 * clean" index entry.
 */
const SETTLED_MS = 2000;

const viewCache = new WeakMap<Inventory, Map<string, { stamps: string; view: ImageView }>>();

/**
 * The image view, kept per inventory snapshot while the directories of its role images are unchanged:
 * one stat per directory (shared by concurrent requests) instead of a readlink and a stat per role image
 * per request. A promote, rollback or try (here, from the CLI, or by hand with mv/ln) changes the
 * directory, so the next request reads the links again: a version switches as it did when every request
 * read them. The view is frozen: callers share it.
 */
export async function loadImageView(inv: Inventory, imagesDir: string): Promise<ImageView> {
  const used = usedImages(inv, imagesDir);
  const dirs = [...new Set(used.map((u) => u.dir))];
  const stats = await Promise.all(dirs.map((d) => statShared(d).catch(() => undefined)));
  const stamps = stats.map((st) => (st ? stampOf(st) : '-')).join('\0');
  let perInv = viewCache.get(inv);
  const hit = perInv?.get(imagesDir);
  if (hit?.stamps === stamps) return hit.view;
  const view = await readView(used);
  Object.freeze(view.current);
  for (const p of Object.values(view.pins)) Object.freeze(p);
  Object.freeze(view.pins);
  Object.freeze(view);
  const now = Date.now();
  if (stats.every((st) => st && now - st.mtimeMs > SETTLED_MS)) {
    if (!perInv) { perInv = new Map(); viewCache.set(inv, perInv); }
    perInv.set(imagesDir, { stamps, view });
  } else {
    perInv?.delete(imagesDir);
  }
  return view;
}

/** The path of a version file beside the image's own path (as the inventory writes it). */
export function versionPath(imagePath: string, file: string): string {
  return join(dirname(imagePath), file);
}
