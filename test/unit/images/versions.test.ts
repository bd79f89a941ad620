import { describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addVersion, ensureVersioned, KEEP, listVersions, pinVersion, promoteVersion, publishVersion, readHistory, resolveVersion, rollbackVersion } from '../../../src/images/versions.js';
import { symlinkSync } from 'node:fs';
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
  it('publishing makes the new file current, keeps the previous and the newest KEEP, prunes the rest', withDir(async (dir) => {
    expect(KEEP).toBe(8);
    for (let n = 1; n <= 9; n++) await publishVersion(dir, 'lb', put(dir, n));
    const after = await listVersions(dir, 'lb');
    expect(after).toEqual({ current: v(9), previous: v(8), all: [2, 3, 4, 5, 6, 7, 8, 9].map(v) });
    expect(existsSync(join(dir, v(1)))).toBe(false);
    expect(readFileSync(join(dir, 'lb.tar'), 'utf8')).toBe('version 9');
    const h = await readHistory(dir, 'lb');
    expect(h.versions.map((r) => [r.file, r.kind, r.pruned ?? false])).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9].map((n) => [v(n), 'built', n === 1]));
  }));

  it('a staged version (added, pinned) is never pruned; promote makes it current and drops its pins', withDir(async (dir) => {
    await publishVersion(dir, 'lb', put(dir, 1));
    const staged = put(dir, 2);
    await addVersion(dir, 'lb', { file: staged, sha256: 'x', kind: 'captured', at: '2026-01-01T00:00:00Z', box: { host: 'w101', mac: 'm', address: 'a' } });
    expect((await listVersions(dir, 'lb')).current).toBe(v(1));
    expect(await pinVersion(dir, 'lb', 'w101', '2222', 'ops')).toBe(staged);
    for (let n = 3; n <= 12; n++) {
      const f = `lb-${n.toString(16).repeat(12)}.tar`;
      writeFileSync(join(dir, f), `version ${n}`);
      await publishVersion(dir, 'lb', f);
    }
    expect(existsSync(join(dir, v(3)))).toBe(false);
    expect(existsSync(join(dir, staged))).toBe(true);
    expect((await readHistory(dir, 'lb')).pins).toEqual({ w101: staged });
    const p = await promoteVersion(dir, 'lb', staged, 'ops');
    expect(p.current).toBe(staged);
    const h = await readHistory(dir, 'lb');
    expect(h.pins).toEqual({});
    expect(h.log.filter((l) => l.op !== 'build').map((l) => [l.op, l.file, l.host ?? null, l.by])).toEqual([['try', staged, 'w101', 'ops'], ['promote', staged, null, 'ops']]);
  }));

  it('resolves versions by file, sha12 or unique prefix; unknown and ambiguous ones are typed errors', withDir(async (dir) => {
    await publishVersion(dir, 'lb', put(dir, 1));
    await publishVersion(dir, 'lb', put(dir, 2));
    expect(await resolveVersion(dir, 'lb', v(1))).toBe(v(1));
    expect(await resolveVersion(dir, 'lb', '222222222222')).toBe(v(2));
    expect(await resolveVersion(dir, 'lb', '1111')).toBe(v(1));
    await expect(resolveVersion(dir, 'lb', 'ffff')).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
    await expect(resolveVersion(dir, 'lb', '../x')).rejects.toMatchObject({ code: 'E_NOT_FOUND' });
  }));

  it('an image put there by hand becomes a content-addressed version (hard link, history says imported)', withDir(async (dir) => {
    writeFileSync(join(dir, 'plain.bin'), 'hand made');
    symlinkSync('plain.bin', join(dir, 'web.tar'));
    const file = await ensureVersioned(dir, 'web');
    expect(file).toMatch(/^web-[0-9a-f]{12}\.tar$/);
    expect((await listVersions(dir, 'web')).current).toBe(file);
    expect(readFileSync(join(dir, 'web.tar'), 'utf8')).toBe('hand made');
    expect((await readHistory(dir, 'web')).versions[0]).toMatchObject({ file, kind: 'imported' });
    expect(await ensureVersioned(dir, 'web')).toBe(file);
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
