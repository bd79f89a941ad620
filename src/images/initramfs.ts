/**
 * Initramfs images from Debian parts: busybox-static, the wanted kernel modules (and their
 * dependencies), an /init script and extra files; a deterministic cpio, gzipped without name or time,
 * so a rebuild from the same inputs is byte-identical.
 */
import { readFileSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { createHash } from 'node:crypto';
import { RolecastError } from '../errors.js';
import { writeCpio, type CpioEntry } from './cpio.js';
import { aliasLines, moduleClosure, kernelVersions, type ModuleSet } from './modules.js';
import { compileHelper, discoverParts } from './discover-parts.js';
import { copyAtomic, writeAtomic } from '../fsutil.js';
import type { Logger } from '../log.js';

export const BUSYBOX = '/bin/busybox';

export interface InitramfsSpec {
  kernelVersion: string;
  /** Module names (closure resolved); absent ones are reported, not fatal (drivers may be built in). */
  modules: string[];
  /** The /init script (busybox sh). */
  init: string;
  files?: CpioEntry[];
}

export interface InitramfsImage {
  image: Buffer;
  sha256: string;
  modules: ModuleSet;
}

/** Directories the init scripts mount onto. */
const DIRS = ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'dev', 'proc', 'sys', 'run', 'tmp', 'mnt', 'newroot', 'etc', 'lib/rolecast-modules'];

export function buildInitramfsImage(spec: InitramfsSpec): InitramfsImage {
  let busybox: Buffer;
  try {
    busybox = readFileSync(BUSYBOX);
  } catch (err) {
    throw new RolecastError('E_NO_BUSYBOX', `cannot read ${BUSYBOX}: install busybox-static`, { cause: err });
  }
  const modules = moduleClosure(spec.kernelVersion, spec.modules);
  const entries: CpioEntry[] = DIRS.map((d) => ({ type: 'dir', path: d }));
  entries.push({ type: 'file', path: 'bin/busybox', mode: 0o755, data: busybox });
  entries.push({ type: 'file', path: 'init', mode: 0o755, data: Buffer.from(spec.init) });
  // Without /dev/console the kernel has nowhere to send early output before devtmpfs is mounted.
  entries.push({ type: 'chardev', path: 'dev/console', mode: 0o600, major: 5, minor: 1 });
  const names = modules.files.map((f) => basename(f));
  modules.files.forEach((f, i) => entries.push({ type: 'file', path: `lib/rolecast-modules/${names[i]}`, mode: 0o644, data: readFileSync(f) }));
  entries.push({ type: 'file', path: 'lib/rolecast-modules/order', mode: 0o644, data: Buffer.from(names.map((n) => `${n}\n`).join('')) });
  entries.push(...modprobeFiles(spec.kernelVersion, modules));
  entries.push(...(spec.files ?? []));
  // gzip level 9 with Node's zlib: header mtime 0, no file name, so the bytes depend on the input only.
  const image = gzipSync(writeCpio(entries), { level: 9 });
  return { image, sha256: createHash('sha256').update(image).digest('hex'), modules };
}

/**
 * modules.dep and modules.alias for busybox modprobe, limited to the modules in the image: /init feeds
 * it the modalias of every device in /sys and it loads only the matching drivers (and their
 * dependencies), as udev does. modules.dep lists a module's dependencies last-loaded first (depmod's
 * order: modprobe inserts them from the end), with soft `pre:` dependencies included, since busybox
 * modprobe does not read softdeps. The .ko files stay in lib/rolecast-modules (the `order` file's
 * users insmod them from there); modprobe reaches them relative to its directory, through a link.
 */
function modprobeFiles(kernelVersion: string, modules: ModuleSet): CpioEntry[] {
  const at = (f: string) => `rolecast/${basename(f)}`;
  const dep = modules.files.map((f) => `${at(f)}:${[...(modules.needs.get(f) ?? [])].reverse().map((d) => ` ${at(d)}`).join('')}\n`).join('');
  const names = new Set(modules.files.map((f) => basename(f, '.ko').replace(/-/g, '_')));
  const alias = aliasLines(kernelVersion, names).map((l) => `${l}\n`).join('');
  const dir = `lib/modules/${kernelVersion}`;
  return [
    { type: 'dir', path: 'lib/modules' },
    { type: 'dir', path: dir },
    { type: 'symlink', path: `${dir}/rolecast`, target: '/lib/rolecast-modules' },
    { type: 'file', path: `${dir}/modules.dep`, mode: 0o644, data: Buffer.from(dep) },
    { type: 'file', path: `${dir}/modules.alias`, mode: 0o644, data: Buffer.from(alias) },
  ];
}

/** The common initramfs sources (busybox sh), shipped in the repository. */
export const INITRAMFS_SRC = resolve(import.meta.dirname, '../../images/initramfs');

/**
 * Drivers the common initramfs carries: NICs of common servers and VMs, and the disk controllers the
 * wipe action needs. virtio_pci is the bus driver virtio_net and virtio_blk sit on; dependencies
 * (virtio_ring, failover, mdio, ...) are added by the closure. Absent ones are reported, not fatal.
 */
export const COMMON_MODULES = [
  'virtio_pci', 'virtio_net', 'e1000', 'e1000e', 'igb', 'ixgbe', 'i40e', 'bnx2x', 'tg3', 'mlx5_core',
  'virtio_blk', 'virtio_scsi', 'sd_mod', 'ahci', 'nvme',
];

/** The newest Debian amd64 kernel that has both /boot/vmlinuz-<v> and /lib/modules/<v>. */
export function defaultKernelVersion(): string {
  const v = kernelVersions().filter((k) => k.endsWith('amd64')).pop() ?? kernelVersions().pop();
  if (!v) throw new RolecastError('E_NO_KERNEL', 'no kernel in /boot with modules in /lib/modules: install linux-image-amd64');
  return v;
}

/** The common initramfs image in memory: busybox, NIC/disk modules, /init, udhcpc hook, wipe action. */
export async function commonInitramfsImage(kernelVersion: string, extra: CpioEntry[] = []): Promise<InitramfsImage & { warnings: string[] }> {
  const src = (f: string) => readFile(join(INITRAMFS_SRC, f));
  const common = moduleClosure(kernelVersion, COMMON_MODULES).files;
  const discover = discoverParts(INITRAMFS_SRC, kernelVersion, common);
  // The secret bundle and signed phone-home need rolecast-boot (issue 16; see its source for why C).
  const client = compileHelper(INITRAMFS_SRC, 'rolecast-boot');
  const warnings = [...discover.warnings, ...(client.warning ? [`${client.warning}: machines with secret files cannot boot, phone-home goes unsigned`] : [])];
  const files: CpioEntry[] = [
    ...(client.binary ? [{ type: 'file' as const, path: 'bin/rolecast-boot', mode: 0o755, data: client.binary }] : []),
    { type: 'file', path: 'etc/udhcpc.script', mode: 0o755, data: await src('udhcpc.script') },
    { type: 'file', path: 'lib/rolecast/wipe.sh', mode: 0o644, data: await src('wipe.sh') },
    ...discover.entries,
    ...extra,
  ];
  const img = buildInitramfsImage({ kernelVersion, modules: COMMON_MODULES, init: (await src('init')).toString(), files });
  return { ...img, warnings };
}

export interface BuildInitramfsOptions {
  /** Output directory (images/build): initrd.img and vmlinuz are written there. */
  out: string;
  kernelVersion?: string;
  logger?: Logger;
}

/** Build the common initramfs into <out>/initrd.img and copy the matching kernel to <out>/vmlinuz. */
export async function buildInitramfs(opts: BuildInitramfsOptions): Promise<{ path: string; sha256: string; kernel: string }> {
  const kver = opts.kernelVersion ?? defaultKernelVersion();
  await mkdir(opts.out, { recursive: true });
  const img = await commonInitramfsImage(kver);
  for (const w of img.warnings) opts.logger?.warn(w);
  if (img.modules.missing.length) opts.logger?.warn({ missing: img.modules.missing, kernel: kver }, 'modules not in this kernel (built in or absent)');
  const path = join(opts.out, 'initrd.img');
  await writeAtomic(path, img.image);
  // Debian installs vmlinuz root-readable only; the builder runs as root.
  const kernel = join(opts.out, 'vmlinuz');
  try {
    await copyAtomic(`/boot/vmlinuz-${kver}`, kernel);
  } catch (err) {
    throw new RolecastError('E_KERNEL_COPY', `cannot copy /boot/vmlinuz-${kver} to ${kernel} (run as root)`, { cause: err });
  }
  opts.logger?.info({ path, sha256: img.sha256, kernel: kver, modules: img.modules.files.length, bytes: img.image.length }, 'initramfs built');
  return { path, sha256: img.sha256, kernel };
}
