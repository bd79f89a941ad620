/**
 * Real role image builds with mmdebstrap (network: the Debian mirror in the apt sources). About 16-30 s
 * and 250 MB per build, so CI skips it unless ROLECAST_TEST_MMDEBSTRAP=1.
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeSystem } from '../../helpers/netns.js';
import { buildRoleImage, rollbackRoleImage } from '../../../src/images/role.js';

const enabled = process.env.ROLECAST_TEST_MMDEBSTRAP === '1';
const suite = enabled ? describeSystem : (name: string, _needs: string[], fn: () => void) => describe.skip(`${name} (set ROLECAST_TEST_MMDEBSTRAP=1)`, fn);

suite('role image build with mmdebstrap (lb)', ['mmdebstrap', 'depmod'], () => {
  it('builds a reproducible lb rootfs with keepalived, an init and the bonding module; rollback keeps the old one', async () => {
    const out = mkdtempSync(join(tmpdir(), 'rc-role-'));
    try {
      const progress: string[] = [];
      const a = await buildRoleImage('lb', { out, onProgress: (l) => progress.push(l) });
      expect(progress.some((l) => l.startsWith('lb: I: '))).toBe(true);
      const list = spawnSync('tar', ['-tvf', a.path], { encoding: 'utf8', maxBuffer: 1 << 28 }).stdout;
      expect(list).toMatch(/\.\/usr\/sbin\/keepalived\n/);
      expect(list).toMatch(/\.\/usr\/sbin\/ipvsadm\n/);
      expect(list).toMatch(/\.\/usr\/sbin\/init -> \/lib\/systemd\/systemd\n/);
      expect(list).toMatch(/lib\/modules\/[^/]+\/kernel\/drivers\/net\/bonding\/bonding\.ko\n/);
      expect(list).toMatch(/lib\/modules\/[^/]+\/modules\.dep\n/);
      expect(list).not.toMatch(/var\/lib\/apt\/lists\/.+_Packages/);
      // A different package set is a new version; the old one stays as previous.
      const b = await buildRoleImage('lb', { out, packages: ['less'] });
      expect(b.sha256).not.toBe(a.sha256);
      expect(b.versions.previous).toBe(`lb-${a.sha256.slice(0, 12)}.tar`);
      const back = await rollbackRoleImage('lb', { out });
      expect(readlinkSync(join(out, 'rootfs', 'lb.tar'))).toBe(`lb-${a.sha256.slice(0, 12)}.tar`);
      expect(back.previous).toBe(`lb-${b.sha256.slice(0, 12)}.tar`);
      // Same packages, same SOURCE_DATE_EPOCH: the same bytes, so the same version.
      const c = await buildRoleImage('lb', { out });
      expect(c.sha256).toBe(a.sha256);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 300_000);
});
