import { describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { listVersions, publishVersion, rollbackVersion } from '../../../src/images/versions.js';
import { RolecastError } from '../../../src/errors.js';

function withDir(fn: (dir: string) => Promise<void>): () => Promise<void> {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rc-versions-'));
    try { await fn(dir); } finally { rmSync(dir, { recursive: true, force: true }); }
  };
}

const v = (n: number) => `lb-${String(n).repeat(12)}.tar`;
const put = (dir: string, n: number) => { writeFileSync(join(dir, v(n)), `version ${n}`); return v(n); };

describe('image versions (current / previous / prune / rollback)', () => {
  it('publishing makes the new file current, keeps one previous, prunes the rest', withDir(async (dir) => {
    await publishVersion(dir, 'lb', put(dir, 1));
    await publishVersion(dir, 'lb', put(dir, 2));
    const after = await publishVersion(dir, 'lb', put(dir, 3));
    expect(after).toEqual({ current: v(3), previous: v(2), all: [v(2), v(3)] });
    expect(existsSync(join(dir, v(1)))).toBe(false);
    expect(readFileSync(join(dir, 'lb.tar'), 'utf8')).toBe('version 3');
  }));

  it('republishing the current content changes nothing', withDir(async (dir) => {
    await publishVersion(dir, 'lb', put(dir, 1));
    await publishVersion(dir, 'lb', put(dir, 2));
    expect(await publishVersion(dir, 'lb', v(2))).toEqual({ current: v(2), previous: v(1), all: [v(1), v(2)] });
  }));

  it('rollback swaps current and previous; twice returns to the start', withDir(async (dir) => {
    await publishVersion(dir, 'lb', put(dir, 1));
    await publishVersion(dir, 'lb', put(dir, 2));
    expect(await rollbackVersion(dir, 'lb')).toMatchObject({ current: v(1), previous: v(2) });
    expect(readFileSync(join(dir, 'lb.tar'), 'utf8')).toBe('version 1');
    expect(await rollbackVersion(dir, 'lb')).toMatchObject({ current: v(2), previous: v(1) });
  }));

  it('rollback without a previous version is a typed error', withDir(async (dir) => {
    await publishVersion(dir, 'lb', put(dir, 1));
    await expect(rollbackVersion(dir, 'lb')).rejects.toThrow(RolecastError);
    await expect(rollbackVersion(dir, 'lb')).rejects.toMatchObject({ code: 'E_NO_PREVIOUS' });
    expect(await listVersions(dir, 'web')).toEqual({ all: [] });
  }));
});
