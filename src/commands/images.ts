/**
 * rolecast images [list] | build <target> | rollback <role>: which images the inventory names and
 * whether their files exist; build them from Debian packages; go back to the previous role image.
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Inventory } from '../inventory/types.js';
import { imageFile } from '../imagecheck.js';
import { FLAGS, type CommandSpec, type Flags } from './spec.js';
import { loadProfiles, out, serverConfig, table, UsageError } from './common.js';

/** Roles that use an image: as kernel (also per firmware through `kernels:`), initrd or rootfs. */
export function imageUsers(inv: Inventory, name: string): string[] {
  return Object.values(inv.roles).filter((r) => r.kernel === name || r.rootfs === name || r.initrd.includes(name) || Object.values(r.kernels).includes(name)).map((r) => r.name);
}

async function cmdList(_args: string[], flags: Flags): Promise<number> {
  const loaded = await serverConfig(flags);
  const inv = await loadProfiles(loaded);
  const rows = await Promise.all(Object.values(inv.images).map(async (img) => {
    const file = imageFile(img, loaded.cfg.imagesDir);
    const st = await stat(file).catch(() => undefined);
    return { name: img.name, kind: img.kind, file, size: st?.size ?? null, present: st !== undefined, roles: imageUsers(inv, img.name) };
  }));
  if (flags.json) out(JSON.stringify(rows, null, 2));
  else out(table([['NAME', 'KIND', 'SIZE', 'ROLES', 'FILE'], ...rows.map((r) => [r.name, r.kind, r.present ? String(r.size) : 'missing', r.roles.join(',') || '-', r.file])]));
  return 0;
}

async function cmdBuild(args: string[], flags: Flags): Promise<number> {
  const [target] = args as [string];
  // Loaded on demand: the builders pull in nothing the other subcommands need.
  const img = await import('../images/index.js');
  if (!img.IMAGE_TARGETS.includes(target)) throw new UsageError(`build: unknown target "${target}" (one of: ${img.IMAGE_TARGETS.join(', ')})`);
  const { cfg } = await serverConfig(flags);
  const dir = typeof flags.out === 'string' ? flags.out : join(cfg.imagesDir, 'build');
  const built = await img.buildImageTarget(target, { out: dir, onProgress: (l) => process.stderr.write(`${l}\n`) });
  for (const b of built) out(`${b.target}: ${b.path} sha256=${b.sha256}`);
  return 0;
}

async function cmdRollback(args: string[], flags: Flags): Promise<number> {
  const [role] = args as [string];
  const img = await import('../images/index.js');
  const { cfg } = await serverConfig(flags);
  const dir = typeof flags.out === 'string' ? flags.out : join(cfg.imagesDir, 'build');
  const v = await img.rollbackRoleImage(role, { out: dir });
  out(`${role}: now ${v.current ?? '?'} (previous ${v.previous ?? 'none'})`);
  return 0;
}

const outFlag = { value: 'DIR', help: 'where built images go (default: <images>/build, where the inventory\'s paths point)' };

export const imagesCommand: CommandSpec = {
  name: 'images', summary: 'the inventory\'s images: list, build, rollback', args: '[list|build|rollback]', flags: {},
  defaultSubcommand: 'list',
  subcommands: [
    {
      name: 'list', summary: 'every image the inventory names: file, size or "missing", roles using it (kernel, kernels:, initrd, rootfs)',
      maxArgs: 0, flags: { profiles: FLAGS.profiles, images: FLAGS.images, config: FLAGS.config, json: FLAGS.json }, run: cmdList,
      examples: ['rolecast images list --images /var/lib/rolecast/images'],
    },
    {
      name: 'build', summary: 'build images from Debian packages', args: '<initramfs|test|memtest|all|roles|ROLE>', minArgs: 1, maxArgs: 1,
      flags: { images: FLAGS.images, config: FLAGS.config, out: outFlag }, run: cmdBuild,
      description: 'initramfs: the common initramfs (busybox + NIC modules) and kernel; test: the small busybox test image (also the rescue image); memtest: memtest86+; all: those three; a role name (lb, web, db, file): a Debian rootfs with mmdebstrap; roles: every role.',
      examples: ['rolecast images build all', 'rolecast images build web --images /var/lib/rolecast/images'],
    },
    {
      name: 'rollback', summary: 'make the previous build of a role image current again', args: '<ROLE>', minArgs: 1, maxArgs: 1,
      flags: { images: FLAGS.images, config: FLAGS.config, out: outFlag }, run: cmdRollback,
      examples: ['rolecast images rollback web'],
    },
  ],
};
