/**
 * rolecast images [list] | build <target> | versions|diff|promote|rollback|try|untry <role>: which
 * images the inventory names and whether their files exist; build them from Debian packages; and a
 * role's base image as one version history (built and captured versions, issue 18): compare two, make
 * one current, go back, or stage one on a single machine first.
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Inventory } from '../inventory/types.js';
import { imageFile } from '../imagecheck.js';
import { FLAGS, type CommandSpec, type Flags } from './spec.js';
import { findMachine, loadProfiles, out, serverConfig, table, UsageError } from './common.js';
import { diffVersions, roleImage, versionsReport, type RoleImage, type VersionsReport } from '../images/roleimage.js';
import { pinVersion, promoteVersion, rollbackVersion } from '../images/versions.js';
import { resolveMachine } from '../inventory/resolve.js';
import { userInfo } from 'node:os';

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

const CODE = { added: 'A', changed: 'M', deleted: 'D', mode: 'P', owner: 'O' } as const;
const who = () => process.env.SUDO_USER ?? process.env.USER ?? userInfo().username;
const short = (file: string | undefined, rep: VersionsReport) => rep.versions.find((v) => v.file === file)?.version ?? file ?? '-';

/** The role's image, from the inventory (its path names the version directory). */
async function imageOfRole(role: string, flags: Flags): Promise<{ ri: RoleImage; inv: Inventory }> {
  const loaded = await serverConfig(flags);
  const inv = await loadProfiles(loaded);
  return { ri: roleImage(inv, loaded.cfg.imagesDir, role), inv };
}

async function cmdVersions(args: string[], flags: Flags): Promise<number> {
  const rep = await versionsReport((await imageOfRole(args[0]!, flags)).ri);
  if (flags.json) { out(JSON.stringify(rep, null, 2)); return 0; }
  const rows = [['VERSION', 'KIND', 'WHEN', 'BY', 'BOX', 'STATE', 'WHAT']];
  for (const v of rep.versions) {
    const state = [v.current ? 'current' : '', v.previous ? 'previous' : '', v.pinnedOn.length ? `on ${v.pinnedOn.join(',')}` : '', v.pruned ? 'pruned' : ''].filter(Boolean).join(', ');
    const what = [v.what, v.changes ? `${v.changes.length} change${v.changes.length === 1 ? '' : 's'} on ${short(v.parent, rep)}` : ''].filter(Boolean).join('; ');
    rows.push([v.version, v.kind ?? '?', v.at?.replace(/\.\d+Z$/, 'Z') ?? '-', v.by ?? '-', v.box?.host ?? '-', state || '-', what || '-']);
  }
  out(`${rep.role}: image ${rep.image} in ${rep.dir}\n${table(rows)}`);
  return 0;
}

async function cmdDiff(args: string[], flags: Flags): Promise<number> {
  const d = await diffVersions((await imageOfRole(args[0]!, flags)).ri, args[1], args[2]);
  if (flags.json) { out(JSON.stringify(d, null, 2)); return 0; }
  out(`${args[0]}: ${d.from} -> ${d.to}: ${d.files.length} path${d.files.length === 1 ? '' : 's'}`);
  for (const f of d.files) out(`${CODE[f.change]} ${f.path}${f.detail ? ` (${f.detail})` : ''}`);
  if (d.diff) process.stdout.write(`\n${d.diff}`);
  return 0;
}

async function cmdPromote(args: string[], flags: Flags): Promise<number> {
  const { ri } = await imageOfRole(args[0]!, flags);
  const v = await promoteVersion(ri.dir, ri.name, args[1]!, who());
  out(`${ri.role}: now ${v.current ?? '?'} (previous ${v.previous ?? 'none'}); machines of the role get it on their next boot`);
  return 0;
}

async function cmdRollback(args: string[], flags: Flags): Promise<number> {
  const [role] = args as [string];
  if (typeof flags.out === 'string') {
    // A build directory outside the inventory's images: <out>/rootfs/<role>.tar, as `images build` made it.
    const img = await import('../images/index.js');
    const v = await img.rollbackRoleImage(role, { out: flags.out });
    out(`${role}: now ${v.current ?? '?'} (previous ${v.previous ?? 'none'})`);
    return 0;
  }
  const { ri } = await imageOfRole(role, flags);
  const v = await rollbackVersion(ri.dir, ri.name, who());
  out(`${role}: now ${v.current ?? '?'} (previous ${v.previous ?? 'none'}); machines of the role get it on their next boot`);
  return 0;
}

async function cmdTry(args: string[], flags: Flags, untry = false): Promise<number> {
  const host = typeof flags.on === 'string' ? flags.on : undefined;
  if (!host) throw new UsageError(`images ${untry ? 'untry' : 'try'} needs --on <host>`);
  const { ri, inv } = await imageOfRole(args[0]!, flags);
  const m = findMachine(inv, host);
  const its = resolveMachine(inv, m).role;
  if (its.rootfs !== ri.image) throw new UsageError(`${m.host} boots role ${its.name} (image ${its.rootfs ?? 'none'}), not ${ri.image}`);
  const file = await pinVersion(ri.dir, ri.name, m.host, untry ? undefined : args[1], who());
  out(file ? `${m.host}: ${file} on its next boot (rolecast images promote ${ri.role} ${args[1]} for the whole role)` : `${m.host}: back on ${ri.role}'s current version on its next boot`);
  return 0;
}

const onFlag = { value: 'HOST', help: 'the machine (host name or MAC) to stage the version on' };
const versionFlags = { profiles: FLAGS.profiles, images: FLAGS.images, config: FLAGS.config, json: FLAGS.json };
const outFlag = { value: 'DIR', help: 'where built images go (default: <images>/build, where the inventory\'s paths point)' };

export const imagesCommand: CommandSpec = {
  name: 'images', summary: 'the inventory\'s images: list, build; role image versions: versions, diff, promote, rollback, try', args: '[list|build|versions|diff|promote|rollback|try|untry]', flags: {},
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
      name: 'versions', summary: 'a role\'s base image versions, built and captured: who, what, when, from which box, current, previous, staged on', args: '<ROLE>', minArgs: 1, maxArgs: 1,
      flags: versionFlags, run: cmdVersions,
      examples: ['rolecast images versions web'],
    },
    {
      name: 'diff', summary: 'paths that differ between two versions (A added, M changed, D deleted, P mode, O owner) and a unified diff of text files',
      args: '<ROLE> [A] [B]', minArgs: 1, maxArgs: 3, flags: versionFlags, run: cmdDiff,
      description: 'No version named: the current version against the newest other one (a capture waiting to be tried). One: the current against it. Two: A against B. Versions by sha12, a unique prefix of it, or the file name.',
      examples: ['rolecast images diff web', 'rolecast images diff web 3f2a91c0'],
    },
    {
      name: 'promote', summary: 'make a version the role\'s current: every machine of the role gets it on its next boot', args: '<ROLE> <VERSION>', minArgs: 2, maxArgs: 2,
      flags: versionFlags, run: cmdPromote, examples: ['rolecast images promote web 3f2a91c0'],
    },
    {
      name: 'rollback', summary: 'make the previous version of a role image current again', args: '<ROLE>', minArgs: 1, maxArgs: 1,
      flags: { ...versionFlags, out: outFlag }, run: cmdRollback,
      examples: ['rolecast images rollback web'],
    },
    {
      name: 'try', summary: 'stage a version on one machine before it becomes the role\'s current (rolecast diff shows it changes)', args: '<ROLE> <VERSION>', minArgs: 2, maxArgs: 2,
      flags: { ...versionFlags, on: onFlag }, run: (a, f) => cmdTry(a, f), examples: ['rolecast images try web 3f2a91c0 --on w101'],
    },
    {
      name: 'untry', summary: 'put a machine back on its role\'s current version', args: '<ROLE>', minArgs: 1, maxArgs: 1,
      flags: { ...versionFlags, on: onFlag }, run: (a, f) => cmdTry(a, f, true), examples: ['rolecast images untry web --on w101'],
    },
  ],
};
