/** rolecast images [list]: which images the inventory names, where their files are, whether they exist. */
import { stat } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { loadInventory } from '../inventory/index.js';
import type { Flags } from '../cli.js';
import { out, serverConfig, table, UsageError } from './common.js';

export async function cmdImages(args: string[], flags: Flags): Promise<number> {
  const [sub = 'list'] = args;
  if (sub !== 'list') throw new UsageError(`images: unknown subcommand "${sub}" (images list)`);
  const { cfg } = await serverConfig(flags);
  const inv = await loadInventory(cfg.profilesDir);
  const rows = await Promise.all(Object.values(inv.images).map(async (img) => {
    const file = isAbsolute(img.path) ? img.path : join(cfg.imagesDir, img.path);
    const st = await stat(file).catch(() => undefined);
    const users = Object.values(inv.roles).filter((r) => r.kernel === img.name || r.rootfs === img.name || r.initrd.includes(img.name)).map((r) => r.name);
    return { name: img.name, kind: img.kind, file, size: st?.size ?? null, present: st !== undefined, roles: users };
  }));
  if (flags.json) out(JSON.stringify(rows, null, 2));
  else out(table([['NAME', 'KIND', 'SIZE', 'ROLES', 'FILE'], ...rows.map((r) => [r.name, r.kind, r.present ? String(r.size) : 'missing', r.roles.join(',') || '-', r.file])]));
  return 0;
}
