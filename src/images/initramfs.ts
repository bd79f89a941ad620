/**
 * Initramfs images from Debian parts: busybox-static, the wanted kernel modules (and their
 * dependencies), an /init script and extra files; a deterministic cpio, gzipped without name or time,
 * so a rebuild from the same inputs is byte-identical.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { gzipSync } from 'node:zlib';
import { createHash } from 'node:crypto';
import { RolecastError } from '../errors.js';
import { writeCpio, type CpioEntry } from './cpio.js';
import { moduleClosure, type ModuleSet } from './modules.js';

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
const DIRS = ['bin', 'sbin', 'dev', 'proc', 'sys', 'run', 'tmp', 'mnt', 'newroot', 'etc', 'lib/rolecast-modules'];

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
  const names = modules.files.map((f, i) => `${String(i).padStart(3, '0')}-${basename(f)}`);
  modules.files.forEach((f, i) => entries.push({ type: 'file', path: `lib/rolecast-modules/${names[i]}`, mode: 0o644, data: readFileSync(f) }));
  entries.push({ type: 'file', path: 'lib/rolecast-modules/order', mode: 0o644, data: Buffer.from(names.map((n) => `${n}\n`).join('')) });
  entries.push(...(spec.files ?? []));
  // gzip level 9 with Node's zlib: header mtime 0, no file name, so the bytes depend on the input only.
  const image = gzipSync(writeCpio(entries), { level: 9 });
  return { image, sha256: createHash('sha256').update(image).digest('hex'), modules };
}
