/**
 * Maintenance images from Debian packages: memtest86+ (BIOS .bin and UEFI .efi from the memtest86+
 * package, installed under /boot) copied to <out>/memtest/, where profiles/rolecast.yaml names them.
 * The rescue shell and the disk wipe need no files of their own: they are the common initramfs
 * (rolecast.action=wipe) and the busybox test rootfs (rolecast.action=rescue).
 */
import { mkdir, access } from 'node:fs/promises';
import { join } from 'node:path';
import { RolecastError } from '../errors.js';
import { copyAtomic, sha256File } from '../fsutil.js';

export const MEMTEST_FILES = ['memtest86+x64.bin', 'memtest86+x64.efi'];

export async function buildMemtest(out: string, from = '/boot'): Promise<{ path: string; sha256: string }[]> {
  const dir = join(out, 'memtest');
  await mkdir(dir, { recursive: true });
  const done: { path: string; sha256: string }[] = [];
  for (const f of MEMTEST_FILES) {
    const src = join(from, f);
    await access(src).catch((err: unknown) => {
      throw new RolecastError('E_NO_MEMTEST', `${src} is missing: apt-get install memtest86+ (dpkg -L memtest86+ lists its files)`, { cause: err });
    });
    const path = join(dir, f);
    await copyAtomic(src, path);
    done.push({ path, sha256: await sha256File(path) });
  }
  return done;
}
