// The image view is kept while the directories of the role images are unchanged, and read again once
// an image operation (a link swapped by rename, the history replaced) changes one: a promote made by
// another process (the CLI) is seen by the next request, without the server being told.
import { afterAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadImageView } from '../../../src/images/view.js';
import type { Inventory } from '../../../src/inventory/types.js';

const dir = mkdtempSync(join(tmpdir(), 'rolecast-view-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const inv = { roles: { web: { rootfs: 'web-root' } }, images: { 'web-root': { name: 'web-root', kind: 'rootfs', path: 'rootfs/web.tar' } } } as unknown as Inventory;
const A = 'web-aaaaaaaaaaaa.tar';
const B = 'web-bbbbbbbbbbbb.tar';

/** The directory as if last changed a minute ago (past the window where a change may hide in the same tick). */
const settle = (d: string) => { const t = new Date(Date.now() - 60_000); utimesSync(d, t, t); };

function point(d: string, target: string) {
  symlinkSync(target, join(d, '.web.tar.tmp'));
  renameSync(join(d, '.web.tar.tmp'), join(d, 'web.tar'));
}

describe('loadImageView', () => {
  const images = join(dir, 'images');
  const rootfs = join(images, 'rootfs');
  mkdirSync(rootfs, { recursive: true });
  writeFileSync(join(rootfs, A), '');
  writeFileSync(join(rootfs, B), '');

  it('is kept while the directory is unchanged, and read again after a link swap by rename', async () => {
    point(rootfs, A);
    settle(rootfs);
    const first = await loadImageView(inv, images);
    expect(first.current).toEqual({ 'web-root': A });
    expect(await loadImageView(inv, images)).toBe(first); // the same frozen object: nothing read again
    expect(Object.isFrozen(first) && Object.isFrozen(first.current)).toBe(true);
    point(rootfs, B); // as promoteVersion (or `rolecast images promote` in another process) does
    expect((await loadImageView(inv, images)).current).toEqual({ 'web-root': B });
  });

  it('sees pins written to the history (replaced by rename) and a changed directory that just settled', async () => {
    settle(rootfs);
    const before = await loadImageView(inv, images);
    expect(before.pins).toEqual({});
    writeFileSync(join(rootfs, '.h.tmp'), JSON.stringify({ versions: [], pins: { w101: A }, log: [] }));
    renameSync(join(rootfs, '.h.tmp'), join(rootfs, 'web.history.json'));
    expect((await loadImageView(inv, images)).pins).toEqual({ 'web-root': { w101: A } });
    // A view read within the settling window is not kept: a second change in the same clock tick is seen.
    point(rootfs, A);
    const v1 = await loadImageView(inv, images);
    point(rootfs, B);
    expect((await loadImageView(inv, images)).current).toEqual({ 'web-root': B });
    expect(v1.current).toEqual({ 'web-root': A });
  });
});
