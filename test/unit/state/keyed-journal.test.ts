/**
 * The keyed record journal (src/state/file/keyed-journal.ts) under the boot tokens and the served
 * records: a change is one appended line whatever the number of keys, a torn last line from a crash does
 * not swallow the next record, and served.json from an older rolecast is read and retired.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileBootTokens } from '../../../src/state/file/boots.js';
import { FileServedStore } from '../../../src/state/file/served.js';
import { pino } from 'pino';
import type { Logger } from '../../../src/log.js';

const dirs: string[] = [];
afterEach(() => { for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true }); });
const tmp = () => { const d = mkdtempSync(join(tmpdir(), 'rolecast-keyed-')); dirs.push(d); return d; };
const mac = (i: number) => `52:54:00:01:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
const lines = (f: string) => readFileSync(f, 'utf8').split('\n').filter(Boolean);
/** The records a store opened afresh on `d` finds (what a CLI beside the server reads). */
async function readServed(d: string) {
  const s = await FileServedStore.open(d);
  const all = { ...s.all() };
  await s.close();
  return all;
}

describe('a torn last line (a crash mid-write)', () => {
  it('is ended before the next record, which then survives a restart (a spent token stays spent)', async () => {
    const d = tmp();
    const a = await FileBootTokens.open(d);
    const r = await a.issue(mac(1), '10.0.0.9', 1000);
    await a.close();
    appendFileSync(join(d, 'boots.jsonl'), '{"mac":"52:54:00:01:00:02","se'); // torn
    const b = await FileBootTokens.open(d);
    const spend = b.spend(mac(1), r.seq, '2026-12-03T19:00:00.000Z');
    expect(spend.won).toBe(true);
    await spend.durable;
    await b.close();
    // Before, the spend's line was appended to the torn one and the pair was skipped as one bad line.
    const c = await FileBootTokens.open(d);
    expect(statSync(join(d, 'boots.jsonl')).mode & 0o077).toBe(0);
    expect(c.current(mac(1))?.spent).toBe('2026-12-03T19:00:00.000Z');
    expect(c.spend(mac(1), r.seq, 'again').won).toBe(false);
    await c.close();
  });
});

describe('a damaged line in the middle', () => {
  it('is skipped with a warning naming the file; the records around it stand', async () => {
    const d = tmp();
    const good = (i: number, seq: number) => JSON.stringify({ mac: mac(i), seq, address: '10.0.0.9' });
    writeFileSync(join(d, 'boots.jsonl'), `${good(1, 100)}\n{"mac":\u0000garbage}\n${good(2, 200)}\n`);
    const logged: string[] = [];
    const logger = pino({ level: 'warn' }, { write: (s: string) => { logged.push(s); } }) as unknown as Logger;
    const b = await FileBootTokens.open(d, { logger });
    expect(b.current(mac(1))?.seq).toBe(100);
    expect(b.current(mac(2))?.seq).toBe(200);
    expect(logged.some((l) => l.includes('"badLines":1') && l.includes(join(d, 'boots.jsonl')))).toBe(true);
    await b.close();
  });
});

describe('changes one after another', () => {
  it('each awaited before the next: every one is written (the next used to wait in the queue for a change that never came)', async () => {
    const d = tmp();
    const s = await FileServedStore.open(d);
    for (let i = 0; i < 50; i++) await s.record(mac(i), { role: 'web', hash: `h${i}`, at: '2026-12-03T19:00:00.000Z' });
    expect(lines(join(d, 'served.jsonl'))).toHaveLength(50);
    const b = await FileBootTokens.open(d);
    for (let i = 0; i < 20; i++) {
      const r = await b.issue(mac(i), '10.0.0.9', 1000 + i);
      await b.spend(mac(i), r.seq, 'now').durable;
    }
    expect(lines(join(d, 'boots.jsonl'))).toHaveLength(40);
    await Promise.all([s.close(), b.close()]);
  }, 10_000);
});

describe('served records', () => {
  it('one line per record at 10,000 machines, not a rewrite of every machine', async () => {
    const d = tmp();
    const s = await FileServedStore.open(d);
    const n = 10_000;
    await Promise.all(Array.from({ length: n }, (_, i) => s.record(mac(i), { host: `w${i}`, role: 'web', hash: 'a'.repeat(64), at: '2026-12-03T19:00:00.000Z' })));
    const size = statSync(join(d, 'served.jsonl')).size;
    // One more record grows the file by its own line only.
    await s.record(mac(5), { host: 'w5', role: 'db', hash: 'b'.repeat(64), at: '2026-12-03T19:01:00.000Z' });
    const line = `${JSON.stringify({ mac: mac(5), host: 'w5', role: 'db', hash: 'b'.repeat(64), at: '2026-12-03T19:01:00.000Z' })}\n`;
    expect(statSync(join(d, 'served.jsonl')).size).toBe(size + Buffer.byteLength(line));
    expect(lines(join(d, 'served.jsonl'))).toHaveLength(n + 1);
    // Readable by an operator's `rolecast diff`, as served.json was (umask permitting); tokens are not.
    expect(statSync(join(d, 'served.jsonl')).mode & 0o777).toBe(0o644 & ~process.umask());
    await s.close();
    const again = await readServed(d);
    expect(Object.keys(again)).toHaveLength(n);
    expect(again[mac(5)]).toEqual({ host: 'w5', role: 'db', hash: 'b'.repeat(64), at: '2026-12-03T19:01:00.000Z' });
    expect(again[mac(6)]?.role).toBe('web');
  });

  it('reads served.json from an older rolecast, newer lines win, and retires it once compacted', async () => {
    const d = tmp();
    const old = { [mac(1)]: { host: 'w1', role: 'web', hash: 'h1', at: '2026-01-01T00:00:00.000Z' }, [mac(2)]: { role: 'db', hash: 'h2', at: '2026-01-01T00:00:00.000Z' } };
    writeFileSync(join(d, 'served.json'), JSON.stringify(old, null, 2));
    const s = await FileServedStore.open(d);
    expect(s.all()).toEqual(old);
    // Opening only reads: no journal appears until a record is made.
    expect(existsSync(join(d, 'served.jsonl'))).toBe(false);
    await s.record(mac(2), { role: 'lb', hash: 'h3', at: '2026-12-03T19:00:00.000Z' });
    expect(s.get(mac(2))?.role).toBe('lb');
    await s.close();
    const t = await FileServedStore.open(d);
    expect(t.get(mac(1))).toEqual(old[mac(1)]);
    expect(t.get(mac(2))?.hash).toBe('h3');
    // Past 4 lines per machine + 1000 the journal is compacted: it then holds served.json's records too.
    await Promise.all(Array.from({ length: 1010 }, (_, i) => t.record(mac(2), { role: 'lb', hash: `h${i}`, at: '2026-12-03T19:00:00.000Z' })));
    await t.close();
    expect(existsSync(join(d, 'served.json'))).toBe(false);
    expect(lines(join(d, 'served.jsonl')).length).toBeLessThan(100);
    const u = await readServed(d);
    expect(u[mac(1)]).toEqual(old[mac(1)]);
    expect(u[mac(2)]?.hash).toBe('h1009');
  });

  it('an unreadable served.json is a clear error naming it, not records dropped', async () => {
    const d = tmp();
    writeFileSync(join(d, 'served.json'), '{"52:54:00:01:00:01": {"role": "web"');
    await expect(FileServedStore.open(d)).rejects.toMatchObject({ code: 'E_STATE_CORRUPT', message: expect.stringContaining(join(d, 'served.json')) });
    expect(existsSync(join(d, 'served.json'))).toBe(true);
  });
});
