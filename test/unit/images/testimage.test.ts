import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildTestImage, testImageTar, TESTIMAGE_SRC } from '../../../src/images/testimage.js';
import { writeTar } from '../../../src/images/tar.js';

/** GNU tar, a reader we did not write. */
function gnuTarList(data: Buffer): string[] {
  const r = spawnSync('tar', ['--numeric-owner', '-tvf', '-'], { input: data, encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  return r.stdout.trim().split('\n');
}

describe('deterministic tar and the CI test image', () => {
  it('writeTar: sorted, parents added, root-owned, mtime 0; later entries replace earlier ones', async () => {
    const data = await writeTar([
      { type: 'file', path: 'etc/b', mode: 0o600, data: Buffer.from('old') },
      { type: 'symlink', path: 'bin/sh', target: 'busybox' },
      { type: 'file', path: '/etc/b', mode: 0o644, data: Buffer.from('new!') },
    ]);
    const lines = gnuTarList(data);
    expect(lines.map((l) => l.split(/\s+/).slice(5).join(' '))).toEqual(['bin/', 'bin/sh -> busybox', 'etc/', 'etc/b']);
    for (const l of lines) expect(l).toMatch(/^\S+ 0\/0 +\d+ 1970-01-01 00:00 /);
    expect(lines[3]).toMatch(/^-rw-r--r-- 0\/0 +4 /);
  });

  it('the test image has busybox, an executable /sbin/init from images/testimage and the phones-home marker', async () => {
    const data = await testImageTar([{ type: 'file', path: '/etc/hostname', mode: 0o644, data: Buffer.from('lb1\n') }]);
    const lines = gnuTarList(data);
    expect(lines.find((l) => l.endsWith(' sbin/init'))).toMatch(/^-rwxr-xr-x /);
    expect(lines.some((l) => l.endsWith(' bin/busybox'))).toBe(true);
    expect(lines.some((l) => l.endsWith(' etc/rolecast/phones-home'))).toBe(true);
    expect(lines.some((l) => l.endsWith(' etc/hostname'))).toBe(true);
    const init = spawnSync('tar', ['-xOf', '-', 'sbin/init'], { input: data });
    expect(init.stdout.equals(readFileSync(join(TESTIMAGE_SRC, 'init')))).toBe(true);
    expect(spawnSync('/bin/busybox', ['sh', '-n', join(TESTIMAGE_SRC, 'init')]).status).toBe(0);
  });

  it('buildTestImage is content-addressed and byte-identical on rebuild', async () => {
    const out = mkdtempSync(join(tmpdir(), 'rc-testimg-'));
    try {
      const a = await buildTestImage(out);
      const b = await buildTestImage(out);
      expect(a.sha256).toBe(b.sha256);
      expect(readlinkSync(join(out, 'rootfs', 'test.tar'))).toBe(`test-${a.sha256.slice(0, 12)}.tar`);
      expect(readFileSync(a.path).equals(await testImageTar())).toBe(true);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
