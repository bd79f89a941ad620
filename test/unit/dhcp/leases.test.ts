import { afterEach, describe, expect, it } from 'vitest';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pino } from 'pino';
import { FileLeaseStore } from '../../../src/state/file/leases.js';
import { fromPool } from '../../../src/dhcp/allocate.js';
import { loadInventory } from '../../../src/inventory/index.js';
import type { Logger } from '../../../src/log.js';

const inv = await loadInventory(resolve(import.meta.dirname, '../../fixtures/profiles'));
let dirs: string[] = [];
/** Every store a test opened, closed after it (an unclosed one left its journal's descriptor to the collector). */
let opened: FileLeaseStore[] = [];
const LeaseStore = {
  async open(...a: Parameters<typeof FileLeaseStore.open>): Promise<FileLeaseStore> {
    const s = await FileLeaseStore.open(...a);
    opened.push(s);
    return s;
  },
};
afterEach(async () => {
  for (const s of opened) await s.close();
  opened = [];
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  dirs = [];
});
function dir(): string { const d = mkdtempSync(join(tmpdir(), 'rolecast-leases-')); dirs.push(d); return d; }
function logger(lines: string[] = []): Logger {
  return pino({ level: 'debug' }, { write: (s: string) => { lines.push(s); } }) as unknown as Logger;
}
const later = (s: number) => new Date(Date.now() + s * 1000).toISOString();

describe('LeaseStore', () => {
  // Issue 16: a later record for the same MAC with an unparsable date replaced the good lease (never
  // live again), so its address went to another machine.
  it('a record with an invalid date (or address, or MAC) does not wipe a valid lease', async () => {
    const d = dir();
    const good = { mac: '52:54:00:00:aa:01', ip: '10.0.0.201', state: 'bound', expiresAt: later(3600) };
    writeFileSync(join(d, 'leases.jsonl'), [
      JSON.stringify(good),
      JSON.stringify({ ...good, expiresAt: 'not a date' }),
      JSON.stringify({ ...good, mac: '52:54:00:00:aa:02', expiresAt: '2026-13-45T99:99:99Z' }),
      JSON.stringify({ ...good, ip: '10.0.0.999' }),
      JSON.stringify({ ...good, mac: '' }), ''].join('\n'));
    const lines: string[] = [];
    const b = await LeaseStore.open(d, logger(lines));
    expect(b.addressOf('52:54:00:00:aa:01')).toBe('10.0.0.201');
    expect(b.holder('10.0.0.201')?.mac).toBe('52:54:00:00:aa:01');
    expect(b.list()).toHaveLength(1);
    expect(lines.join('')).toMatch(/unreadable lines/);
    expect(lines.join('')).toMatch(/"badLines":4/);
  });

  it('a directory where the lease journal belongs does not stop the start: set aside, said, and leases work', async () => {
    const d = dir();
    mkdirSync(join(d, 'leases.jsonl'));
    const lines: string[] = [];
    const b = await LeaseStore.open(d, logger(lines));
    expect(lines.join('')).toMatch(/lease journal path is a directory/);
    expect(statSync(join(d, 'leases.jsonl.corrupt-1')).isDirectory()).toBe(true);
    await b.commit({ mac: '52:54:00:00:aa:05', ip: '10.0.0.205', state: 'bound', expiresAt: later(60) });
    expect((await LeaseStore.open(d, logger())).addressOf('52:54:00:00:aa:05')).toBe('10.0.0.205');
  });

  it('keeps every recorded lease across a reopen', async () => {
    const d = dir();
    const a = await LeaseStore.open(d, logger());
    await Promise.all(Array.from({ length: 50 }, (_, i) => a.commit({ mac: `52:54:00:00:aa:${i.toString(16).padStart(2, '0')}`, ip: `10.0.0.${200 + (i % 50)}`, state: 'bound', expiresAt: later(3600) })));
    // No close(): as if killed right after the last record resolved.
    const b = await LeaseStore.open(d, logger());
    expect(b.list()).toHaveLength(50);
    expect(b.addressOf('52:54:00:00:aa:00')).toBe('10.0.0.200');
  });

  it('drops a torn last line quietly and keeps the rest', async () => {
    const d = dir();
    const a = await LeaseStore.open(d, logger());
    await a.commit({ mac: '52:54:00:00:aa:01', ip: '10.0.0.201', state: 'bound', expiresAt: later(60) });
    appendFileSync(join(d, 'leases.jsonl'), '{"mac":"52:54:00:00:aa:02","ip":"10.0.');
    const lines: string[] = [];
    const b = await LeaseStore.open(d, logger(lines));
    expect(b.list().map((l) => l.mac)).toEqual(['52:54:00:00:aa:01']);
    expect(lines.join('')).toMatch(/dropped a torn last lease record/);
    expect(readdirSync(d).some((f) => f.includes('corrupt'))).toBe(false);
  });

  it('keeps a corrupt journal aside, loads what parses and says so', async () => {
    const d = dir();
    writeFileSync(join(d, 'leases.jsonl'), [
      JSON.stringify({ mac: '52:54:00:00:aa:01', ip: '10.0.0.201', state: 'bound', expiresAt: later(60) }),
      'garbage here',
      JSON.stringify({ mac: 'x', ip: 1 }),
      JSON.stringify({ mac: '52:54:00:00:aa:03', ip: '10.0.0.203', state: 'bound', expiresAt: later(60) }), ''].join('\n'));
    const lines: string[] = [];
    const s = await LeaseStore.open(d, logger(lines));
    expect(s.list().map((l) => l.ip)).toEqual(['10.0.0.201', '10.0.0.203']);
    expect(existsSync(join(d, 'leases.jsonl.corrupt-1'))).toBe(true);
    expect(readFileSync(join(d, 'leases.jsonl.corrupt-1'), 'utf8')).toContain('garbage here');
    expect(lines.join('')).toMatch(/"badLines":2.*kept the bad file aside/);
  });

  it('never offers an address another MAC holds, a reserved one, or a declined one', async () => {
    const s = await LeaseStore.open(dir(), logger());
    const first = fromPool(inv, s, '52:54:00:00:bb:01')!;
    expect(first.ip).toBe('10.0.0.200');
    await s.commit({ mac: '52:54:00:00:bb:01', ip: first.ip, state: 'bound', expiresAt: later(60) });
    expect(fromPool(inv, s, '52:54:00:00:bb:02')!.ip).toBe('10.0.0.201');
    await s.commit({ mac: '52:54:00:00:bb:02', ip: '10.0.0.201', state: 'declined', expiresAt: later(600) });
    expect(fromPool(inv, s, '52:54:00:00:bb:03')!.ip).toBe('10.0.0.202');
    expect(fromPool(inv, s, '52:54:00:00:bb:02')!.ip).not.toBe('10.0.0.201'); // its declined address stays held back
    // The same MAC gets its own address back.
    expect(fromPool(inv, s, '52:54:00:00:bb:01')!.ip).toBe('10.0.0.200');
  });

  it('an exhausted pool offers nothing until a lease expires', async () => {
    let now = Date.now();
    const s = await LeaseStore.open(dir(), logger(), () => now);
    await s.commit({ mac: '52:54:00:00:cc:00', ip: '10.0.0.200', state: 'bound', expiresAt: new Date(now + 1000).toISOString() });
    for (let i = 1; i < 50; i++) await s.commit({ mac: `52:54:00:00:cc:${i.toString(16).padStart(2, '0')}`, ip: `10.0.0.${200 + i}`, state: 'bound', expiresAt: new Date(now + 3_600_000).toISOString() });
    expect(fromPool(inv, s, '52:54:00:00:dd:01')).toBeUndefined();
    now += 2000;
    expect(fromPool(inv, s, '52:54:00:00:dd:01')!.ip).toBe('10.0.0.200');
  });

  it('compacts the journal once it grows well past the live set', async () => {
    const d = dir();
    const s = await LeaseStore.open(d, logger(), Date.now, { compactSlack: 1000 });
    for (let i = 0; i < 1100; i++) await s.commit({ mac: '52:54:00:00:ee:01', ip: '10.0.0.230', state: 'bound', expiresAt: later(60 + i) });
    const lines = readFileSync(join(d, 'leases.jsonl'), 'utf8').trim().split('\n');
    expect(lines.length).toBeLessThan(200);
    const again = await LeaseStore.open(d, logger());
    expect(again.list()).toEqual([expect.objectContaining({ mac: '52:54:00:00:ee:01', ip: '10.0.0.230', state: 'bound' })]);
  });
});
