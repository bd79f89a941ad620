/**
 * Role base images: a Debian bookworm minbase rootfs per role, built with mmdebstrap, versioned by
 * content hash (rootfs/<role>-<sha12>.tar, rootfs/<role>.tar → current, <role>.previous.tar → the one
 * before), so `rolecast images rollback <role>` is one symlink swap. SOURCE_DATE_EPOCH makes
 * mmdebstrap's output reproducible for the same package versions.
 *
 * Each image also carries the netboot kernel's network modules (bonding, 8021q, ip_vs, netfilter):
 * the rootfs arrives without /lib/modules, and ifenslave, vlan and keepalived need them.
 */
import { spawn } from 'node:child_process';
import { mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { RolecastError } from '../errors.js';
import type { Logger } from '../log.js';
import { sha256File } from '../fsutil.js';
import { publishVersion, rollbackVersion, type ImageVersions } from './versions.js';
import { defaultKernelVersion } from './initramfs.js';

/**
 * What every role gets: an init, udev (without it systemd waits 90 s for dev-ttyS0.device and the
 * serial getty never starts — measured), the tools that bring up the pre-seeded bond and VLAN, and
 * wget for rolecast-capture (minbase has sh, find, stat, sha256sum, awk and tar already).
 */
export const COMMON_PACKAGES = ['systemd-sysv', 'udev', 'ifupdown', 'iproute2', 'ifenslave', 'vlan', 'kmod', 'netbase', 'wget'];

export const ROLE_PACKAGES: Record<string, string[]> = {
  lb: ['keepalived', 'ipvsadm'],
  web: ['nginx'],
  db: ['mariadb-server'],
  file: ['nfs-kernel-server'],
};

export interface RoleBuildOptions {
  /** images/build: the image lands in <out>/rootfs. */
  out: string;
  logger?: Logger;
  onProgress?: (line: string) => void;
  suite?: string;
  mirror?: string;
  kernelVersion?: string;
  /** Extra packages on top of the role's. */
  packages?: string[];
}

function modulesHook(kver: string): string {
  const src = `/lib/modules/${kver}`;
  const dst = `"$1/lib/modules/${kver}"`;
  return [
    `mkdir -p ${dst}/kernel/drivers/net`,
    `cp -a ${src}/kernel/net ${dst}/kernel/`,
    `cp -a ${src}/kernel/drivers/net/bonding ${dst}/kernel/drivers/net/`,
    `cp -a ${src}/modules.order ${src}/modules.builtin ${src}/modules.builtin.modinfo ${dst}/`,
    `depmod -b "$1" ${kver}`,
  ].join(' && ');
}

export function mmdebstrapArgs(role: string, target: string, opts: RoleBuildOptions, kver: string): string[] {
  const pkgs = ROLE_PACKAGES[role];
  if (!pkgs) throw new RolecastError('E_UNKNOWN_ROLE_IMAGE', `no package list for role "${role}" (known: ${Object.keys(ROLE_PACKAGES).join(', ')})`);
  const suite = opts.suite ?? 'bookworm';
  return [
    '--variant=minbase', '--mode=root', '--format=tar',
    `--include=${[...COMMON_PACKAGES, ...pkgs, ...(opts.packages ?? [])].join(',')}`,
    `--customize-hook=${modulesHook(kver)}`,
    // Keep the image small: no apt lists or caches in a netbooted root.
    '--customize-hook=rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin',
    suite, target,
    // Explicit sources: with no mirror and a non-terminal stdin, mmdebstrap would read them from stdin.
    opts.mirror ?? 'http://deb.debian.org/debian',
  ];
}

function runMmdebstrap(args: string[], onLine: (l: string) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('mmdebstrap', args, {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, SOURCE_DATE_EPOCH: process.env.SOURCE_DATE_EPOCH ?? '1704067200' },
    });
    let buf = '';
    const tail: string[] = [];
    child.stderr.on('data', (d: Buffer) => {
      buf += d.toString();
      const lines = buf.split('\n');
      buf = lines.pop() ?? '';
      for (const l of lines) {
        tail.push(l); if (tail.length > 20) tail.shift();
        onLine(l);
      }
    });
    child.on('error', (err) => reject(new RolecastError('E_NO_MMDEBSTRAP', 'cannot run mmdebstrap (apt-get install mmdebstrap)', { cause: err })));
    child.on('close', (code) => (code === 0 ? resolve() : reject(new RolecastError('E_MMDEBSTRAP', `mmdebstrap exited ${code}:\n${tail.join('\n')}`))));
  });
}

/** Build a role image; the new version becomes current, the old one is kept as previous. */
export async function buildRoleImage(role: string, opts: RoleBuildOptions): Promise<{ path: string; sha256: string; versions: ImageVersions }> {
  const dir = join(opts.out, 'rootfs');
  await mkdir(dir, { recursive: true });
  const kver = opts.kernelVersion ?? defaultKernelVersion();
  const tmp = join(dir, `.${role}.building-${process.pid}.tar`);
  const args = mmdebstrapArgs(role, tmp, opts, kver);
  opts.logger?.info({ role, args }, 'building role image');
  try {
    await runMmdebstrap(args, (l) => {
      if (l.startsWith('I: ') || l.startsWith('E: ') || l.startsWith('W: ')) opts.onProgress?.(`${role}: ${l}`);
    });
    const sha256 = await sha256File(tmp);
    const file = `${role}-${sha256.slice(0, 12)}.tar`;
    await rename(tmp, join(dir, file));
    const versions = await publishVersion(dir, role, file, { kind: 'built', sha256, what: `rolecast images build ${role} (${[...COMMON_PACKAGES, ...(ROLE_PACKAGES[role] ?? []), ...(opts.packages ?? [])].length} packages)` });
    opts.logger?.info({ role, file, versions }, 'role image built');
    return { path: join(dir, `${role}.tar`), sha256, versions };
  } finally {
    await rm(tmp, { force: true });
  }
}

/** Point <role>.tar back at the previous version (and keep the current one as the new previous). */
export async function rollbackRoleImage(role: string, opts: { out: string }): Promise<ImageVersions> {
  return rollbackVersion(join(opts.out, 'rootfs'), role);
}
