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

export async function loadImageView(inv: Inventory, imagesDir: string): Promise<ImageView> {
  const view: ImageView = { current: {}, pins: {} };
  const used = new Set(Object.values(inv.roles).map((r) => r.rootfs).filter((x): x is string => x !== undefined));
  await Promise.all([...used].map(async (name) => {
    const img = inv.images[name];
    if (!img?.path.endsWith('.tar')) return;
    const path = isAbsolute(img.path) ? img.path : join(imagesDir, img.path);
    const stem = basename(path, '.tar');
    const target = await readlinkShared(path).then(basename, () => undefined);
    if (target && versionPattern(stem).test(target)) view.current[name] = target;
    const pins = await pinsOf(dirname(path), stem).catch(() => ({}));
    if (Object.keys(pins).length) view.pins[name] = pins;
  }));
  return view;
}

/** The path of a version file beside the image's own path (as the inventory writes it). */
export function versionPath(imagePath: string, file: string): string {
  return join(dirname(imagePath), file);
}
