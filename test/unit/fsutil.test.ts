/** statShared: made on the calling thread, asking the kernel every time (no cache). */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { statShared } from '../../src/fsutil.js';

describe('statShared', () => {
  it('sees a file replaced between two calls', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rolecast-sf-'));
    try {
      const f = join(dir, 'a');
      writeFileSync(f, 'one');
      expect((await statShared(f)).size).toBe(3);
      writeFileSync(f, 'three');
      expect((await statShared(f)).size).toBe(5);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('rejects for a missing file, as stat does', async () => {
    await expect(statShared('/nonexistent/rolecast-statShared')).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
