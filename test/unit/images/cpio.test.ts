import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { writeCpio, type CpioEntry } from '../../../src/images/cpio.js';

const entries: CpioEntry[] = [
  { type: 'file', path: 'sbin/tool', mode: 0o755, data: Buffer.from('#!/bin/sh\necho hi\n') },
  { type: 'file', path: '/init', mode: 0o755, data: Buffer.from('x') },
  { type: 'symlink', path: 'bin/sh', target: 'busybox' },
  { type: 'chardev', path: 'dev/console', mode: 0o600, major: 5, minor: 1 },
  { type: 'dir', path: 'proc' },
];

/** GNU cpio, a reader we did not write, lists the archive. */
function listWithGnuCpio(archive: Buffer, verbose = true): string[] {
  const r = spawnSync('cpio', [verbose ? '-itv' : '-it', '--quiet'], { input: archive, encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  return r.stdout.trim().split('\n');
}

describe('writeCpio (newc)', () => {
  it('is read by GNU cpio: sorted names, parents added, root-owned, epoch mtimes, dev/console c 5,1', () => {
    const lines = listWithGnuCpio(writeCpio(entries));
    expect(listWithGnuCpio(writeCpio(entries), false)).toEqual(['bin', 'bin/sh', 'dev', 'dev/console', 'init', 'proc', 'sbin', 'sbin/tool']);
    expect(lines.find((l) => l.includes('bin/sh'))).toMatch(/^lrwxrwxrwx .* bin\/sh -> busybox$/);
    for (const l of lines) expect(l).toMatch(/^\S+\s+\d+\s+root\s+root\s+.*Jan\s+1\s+1970/);
    expect(lines.find((l) => l.endsWith('dev/console'))).toMatch(/^crw-------\s+1\s+root\s+root\s+5,\s+1 /);
    expect(lines.find((l) => l.endsWith('sbin/tool'))).toMatch(/^-rwxr-xr-x .* 18 /);
  });

  it('gives the same bytes for the same entries in any order', () => {
    expect(writeCpio(entries).equals(writeCpio([...entries].reverse()))).toBe(true);
  });

  it('keeps every record 4-byte aligned and ends with the trailer', () => {
    const a = writeCpio(entries);
    expect(a.length % 4).toBe(0);
    expect(a.subarray(0, 6).toString()).toBe('070701');
    expect(a.includes(Buffer.from('TRAILER!!!\0'))).toBe(true);
  });
});
