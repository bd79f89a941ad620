/**
 * The CI test image: busybox-static and an /sbin/init that prints the console markers the e2e tests
 * read, phones home "booted" and powers off (or stays on a shell for rolecast.action=rescue). A few
 * hundred KiB compressed instead of a 200 MB Debian rootfs, so a VM boot in CI stays ~20 s.
 */
import { readFile, mkdir } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { createHash } from 'node:crypto';
import { RolecastError } from '../errors.js';
import { writeTar, type TarEntry } from './tar.js';
import { writeAtomic } from '../fsutil.js';
import { publishVersion } from './versions.js';
import { BUSYBOX } from './initramfs.js';

export const TESTIMAGE_SRC = resolve(import.meta.dirname, '../../images/testimage');

/**
 * busybox's applet links, as `busybox --install -s` makes them at boot: in the image already, so a
 * booted box matches its manifest and `rolecast-capture --changed` lists only what someone changed.
 */
function appletLinks(): TarEntry[] {
  const r = spawnSync(BUSYBOX, ['--list-full'], { encoding: 'utf8' });
  if (r.status !== 0) throw new RolecastError('E_NO_BUSYBOX', `${BUSYBOX} --list-full failed: install busybox-static`);
  return r.stdout.split('\n').filter((p) => p && p !== 'bin/busybox' && p !== 'bin/sh')
    .map((path): TarEntry => ({ type: 'symlink', path, target: BUSYBOX }));
}

/** The image's entries; `extra` adds or replaces files (tests pre-seed a machine's files this way). */
export async function testImageTar(extra: TarEntry[] = []): Promise<Buffer> {
  const busybox = await readFile(BUSYBOX).catch((err: unknown) => {
    throw new RolecastError('E_NO_BUSYBOX', `cannot read ${BUSYBOX}: install busybox-static`, { cause: err });
  });
  const entries: TarEntry[] = [
    ...['dev', 'proc', 'sys', 'run', 'tmp', 'etc', 'root', 'usr/bin', 'usr/sbin'].map((p): TarEntry => ({ type: 'dir', path: p })),
    { type: 'file', path: 'bin/busybox', mode: 0o755, data: busybox },
    { type: 'symlink', path: 'bin/sh', target: 'busybox' },
    ...appletLinks(),
    { type: 'file', path: 'etc/motd', mode: 0o644, data: Buffer.from('rolecast test image\n') },
    { type: 'file', path: 'sbin/init', mode: 0o755, data: await readFile(join(TESTIMAGE_SRC, 'init')) },
    // Tells the initramfs that this image reports "booted" itself.
    { type: 'file', path: 'etc/rolecast/phones-home', mode: 0o644, data: Buffer.from('booted\n') },
  ];
  return writeTar([...entries, ...extra]);
}

/** Build <out>/rootfs/test-<sha12>.tar and point <out>/rootfs/test.tar at it. */
export async function buildTestImage(out: string): Promise<{ path: string; sha256: string }> {
  const dir = join(out, 'rootfs');
  await mkdir(dir, { recursive: true });
  const data = await testImageTar();
  const sha256 = createHash('sha256').update(data).digest('hex');
  const file = `test-${sha256.slice(0, 12)}.tar`;
  await writeAtomic(join(dir, file), data);
  await publishVersion(dir, 'test', file, { kind: 'built', sha256, what: 'rolecast images build test' });
  return { path: join(dir, 'test.tar'), sha256 };
}
