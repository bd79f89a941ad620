/**
 * A lease journal compaction that renamed the new journal into place but could not open it (EMFILE here,
 * made by failing node:fs/promises open once) used to leave the store on its closed old descriptor: every
 * later grant failed with EBADF until a restart. Now the grant made meanwhile fails loudly (never
 * acknowledged unwritten), and the next write opens the journal and the store carries on, on disk.
 */
import { afterEach, expect, it, vi } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import type { Logger } from '../../../src/log.js';

const failAppendOpens = { left: 0 };
vi.mock('node:fs/promises', async (importOriginal) => (await import('../../helpers/failing-open.js')).failingAppendOpens(await importOriginal(), 'leases.jsonl', failAppendOpens));

const { FileLeaseStore } = await import('../../../src/state/file/leases.js');

const dirs: string[] = [];
afterEach(() => { for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true }); });
const later = (s: number) => new Date(Date.now() + s * 1000).toISOString();

it('a journal that cannot be reopened after a compaction fails the grant meanwhile, then is reopened by the next write', async () => {
  const d = mkdtempSync(join(tmpdir(), 'rolecast-lease-reopen-'));
  dirs.push(d);
  const lines: string[] = [];
  const logger = pino({ level: 'debug' }, { write: (s: string) => { lines.push(s); } }) as unknown as Logger;
  // Slack 0: a compaction after the first batch that holds more than 4 lines per live lease.
  const s = await FileLeaseStore.open(d, logger, Date.now, { compactSlack: 0 });
  const mac = '52:54:00:00:aa:01';
  const other = '52:54:00:00:aa:02';
  const last = later(7200);
  try {
    // Five records of one lease: the fifth write passes 4 lines per lease, and its compaction's reopen
    // fails; so does the reopen the next write tries first.
    failAppendOpens.left = 2;
    for (let i = 0; i < 5; i++) expect(await s.commit({ mac, ip: '10.0.0.201', state: 'bound', expiresAt: later(3600 + i) })).toBe(true);
    // The compaction runs after that write's grant resolved.
    for (let i = 0; i < 200 && !lines.some((l) => l.includes('lease journal compaction failed')); i++) await new Promise((r) => setTimeout(r, 10));
    expect(lines.some((l) => l.includes('lease journal compaction failed'))).toBe(true);
    // That grant is refused, not acknowledged unwritten.
    await expect(s.commit({ mac: other, ip: '10.0.0.202', state: 'bound', expiresAt: later(3600) })).rejects.toMatchObject({ code: 'EMFILE' });
    expect(failAppendOpens.left).toBe(0);
    // The next one opens the journal and lands on disk (before the fix: EBADF, and every one after too).
    expect(await s.commit({ mac: other, ip: '10.0.0.202', state: 'bound', expiresAt: last })).toBe(true);
    const onDisk = readFileSync(join(d, 'leases.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { mac: string; expiresAt: string });
    expect(onDisk.filter((r) => r.mac === other).at(-1)?.expiresAt).toBe(last);
  } finally {
    await s.close();
  }
  // And a store opened on that journal again finds both leases.
  const again = await FileLeaseStore.open(d, logger, Date.now);
  try {
    expect(again.byMacLive('52:54:00:00:aa:01')?.ip).toBe('10.0.0.201');
    expect(again.byMacLive('52:54:00:00:aa:02')?.ip).toBe('10.0.0.202');
  } finally {
    await again.close();
  }
});
