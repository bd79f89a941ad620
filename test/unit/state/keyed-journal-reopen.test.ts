/**
 * A boot-token journal compaction that renamed the new file into place but could not open it (EMFILE,
 * made here by failing node:fs/promises open): the boot it ran for was refused although its record was on
 * disk, and the store kept its descriptor on the file renamed away, so later records (a spent token) were
 * "durable" in a deleted file and gone after a restart: the secret bundle could go out twice. Now the
 * record stands, the failure is logged, and the next write opens the file first (failing loudly if it
 * cannot).
 */
import { afterEach, expect, it, vi } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import type { Logger } from '../../../src/log.js';

const failAppendOpens = { left: 0 };
vi.mock('node:fs/promises', async (importOriginal) => (await import('../../helpers/failing-open.js')).failingAppendOpens(await importOriginal(), 'boots.jsonl', failAppendOpens));

const { FileBootTokens } = await import('../../../src/state/file/boots.js');

const dirs: string[] = [];
afterEach(() => { for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true }); });
const MAC = '52:54:00:00:bb:01';

it('a spent token after a compaction whose reopen failed is on disk, and a write that cannot open the file fails', async () => {
  const d = mkdtempSync(join(tmpdir(), 'rolecast-boots-reopen-'));
  dirs.push(d);
  const logged: string[] = [];
  const logger = pino({ level: 'debug' }, { write: (s: string) => { logged.push(s); } }) as unknown as Logger;
  const s = await FileBootTokens.open(d, { compactAfter: 0, logger });
  let seq = 0;
  try {
    // Lines past four per MAC: the fifth issue's batch compacts, and its reopen fails.
    for (let i = 0; i < 4; i++) await s.issue(MAC, '10.0.0.9', 1000 + i);
    failAppendOpens.left = 2;
    seq = (await s.issue(MAC, '10.0.0.9', 2000)).seq;
    expect(logged.some((l) => l.includes('cannot open it again'))).toBe(true);
    // The next write cannot open it either: refused, not "durable" in the file renamed away.
    const first = s.spend(MAC, seq, '2026-12-03T19:00:00.000Z');
    expect(first.won).toBe(true);
    await expect(first.durable).rejects.toMatchObject({ code: 'EMFILE' });
    expect(failAppendOpens.left).toBe(0);
    // A new boot: its token is written to the journal now in place, and spent there.
    seq = (await s.issue(MAC, '10.0.0.9', 3000)).seq;
    const spend = s.spend(MAC, seq, '2026-12-03T19:01:00.000Z');
    await spend.durable;
  } finally {
    await s.close();
  }
  const again = await FileBootTokens.open(d);
  try {
    expect(again.current(MAC)).toMatchObject({ seq, spent: '2026-12-03T19:01:00.000Z' });
  } finally {
    await again.close();
  }
});
