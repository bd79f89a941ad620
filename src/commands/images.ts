/**
 * rolecast images [list] | build <target> | rollback <role>: which images the inventory names and
 * whether their files exist; build them from Debian packages; go back to the previous role image.
 */
import { stat } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { loadInventory } from '../inventory/index.js';
import type { Flags } from '../cli.js';
import { out, serverConfig, table, UsageError } from './common.js';

export async function cmdImages(args: string[], flags: Flags): Promise<number> {
  const [sub = 'list', target] = args;
  const { cfg } = await serverConfig(flags);
  if (sub === 'build' || sub === 'rollback') {
    if (!target) throw new UsageError(`images ${sub} needs a target (${sub === 'build' ? 'initramfs, test, memtest, all, roles or a role' : 'a role'})`);
    // Loaded on demand: the builders pull in nothing the other subcommands need.
    const img = await import('../images/index.js');
    const dir = typeof flags.out === 'string' ? flags.out : join(cfg.imagesDir, 'build');
    if (sub === 'rollback') {
      const v = await img.rollbackRoleImage(target, { out: dir });
      out(`${target}: now ${v.current ?? '?'} (previous ${v.previous ?? 'none'})`);
      return 0;
    }
    const built = await img.buildImageTarget(target, { out: dir, onProgress: (l) => process.stderr.write(`${l}\n`) });
    for (const b of built) out(`${b.target}: ${b.path} sha256=${b.sha256}`);
    return 0;
  }
  if (sub !== 'list') throw new UsageError(`images: unknown subcommand "${sub}" (list, build, rollback)`);
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
