/**
 * File backend, several processes on one data directory: a CLI process (here test/helpers/state-writer.ts,
 * a real second process going through openState as `rolecast power` does) appends boot events and power
 * actions while the server runs; the server's timelines, SSE subscribers and power log get each of them
 * once — also while the server compacts events.jsonl under the writer, across a rotation of the file,
 * and with a partial last line that is completed later.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { appendFileSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { openState, type StateSource } from '../../../src/state/open.js';
import { FileEventLog } from '../../../src/state/file/events.js';
import { silentLogger } from '../../../src/log.js';
import type { BootEvent } from '../../../src/events/types.js';
import { waitFor } from '../../helpers/netns.js';
import pino from 'pino';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '../../..');
const dirs: string[] = [];
afterEach(() => { for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true }); });

function source(): StateSource {
  const d = mkdtempSync(join(tmpdir(), 'rolecast-follow-'));
  dirs.push(d);
  return { dataDir: join(d, 'data'), profilesDir: join(d, 'profiles'), state: { backend: 'file' } };
}

async function writer(cfg: StateSource, n: number, pauseMs = 0): Promise<void> {
  const r = await run('node', ['--import', 'tsx', join(ROOT, 'test/helpers/state-writer.ts'), JSON.stringify(cfg), String(n), String(pauseMs)], { cwd: ROOT });
  expect(r.stdout.trim()).toBe(`done ${n}`);
}

/** Wait for `cond`; on timeout say what was there. */
async function until(cond: () => boolean, ms: number, what: () => string): Promise<void> {
  await waitFor(cond, ms).catch(() => { throw new Error(`timed out after ${ms} ms: ${what()}`); });
}

/** How often each "cli <i>" detail was seen. */
function counts(events: BootEvent[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const e of events) if (e.detail?.startsWith('cli ')) m.set(e.detail, (m.get(e.detail) ?? 0) + 1);
  return m;
}

describe('file state shared by several processes', () => {
  it("a CLI process's events and power actions reach the running server's timelines, subscribers and power log, once", async () => {
    const cfg = source();
    const server = await openState(cfg, { logger: silentLogger() });
    const seen: BootEvent[] = [];
    server.events.subscribe((e) => seen.push(e));
    for (let i = 0; i < 100; i++) server.events.emit({ mac: '52:54:00:00:02:01', host: 'w101', stage: 'dhcp-ack', detail: `own ${i}` });
    await writer(cfg, 300);
    await until(() => counts(seen).size === 300, 20_000, () => `${counts(seen).size} of 300 CLI events`);
    expect([...counts(seen)].filter(([, n]) => n !== 1)).toEqual([]);
    expect(server.events.timeline('52:54:00:77:00:03').map((e) => e.detail)).toEqual(Array.from({ length: 15 }, (_, k) => `cli ${3 + 20 * k}`));
    await until(() => server.power.list().length === 3, 20_000, () => `${server.power.list().length} of 3 power actions`);
    expect(server.power.list('cli-0').map((a) => a.by)).toEqual(['cli 0', 'cli 100', 'cli 200']);
    // The server's own events were not read back as new ones.
    await new Promise((r) => setTimeout(r, 1200));
    expect(server.events.timeline('52:54:00:00:02:01')).toHaveLength(100);
    expect(seen.filter((e) => e.detail?.startsWith('own '))).toHaveLength(100);
    await server.close();
  }, 120_000);

  it('the server compacts events.jsonl while the CLI writes: every CLI event reaches it once and stays on disk', async () => {
    const cfg = source();
    let compactions = 0;
    const logger = pino({ level: 'info' }, { write: (s: string) => { if (s.includes('boot event log compacted')) compactions++; } });
    const server = await FileEventLog.open(cfg.dataDir, logger, undefined, { maxFileBytes: 64 * 1024, maxUnknownMacs: 200 });
    const seen: BootEvent[] = [];
    server.subscribe((e) => seen.push(e));
    let stop = false;
    const noise = (async () => {
      // Unknown MACs: kept only 200 at a time, so every compaction shrinks the file and it fills again.
      for (let i = 0; !stop; i++) {
        server.emit({ mac: `02:00:00:00:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`, stage: 'dhcp-discover', detail: 'x'.repeat(200) });
        if (i % 100 === 99) await new Promise((r) => setTimeout(r, 2));
      }
    })();
    // How many compactions fit in a stretch of time is the disk's to say: each one fsyncs its new file,
    // and a clean-clone run on a busy box counted a single one over the life of a 3 ms-paced writer.
    // So the test waits for them rather than hoping: the file is already being compacted when the CLI
    // starts, the CLI appends for 2 s (100 ms after every 50 events), and the noise goes on until the
    // server has compacted at least 3 times (compacted(3) is that check: it fails after 60 s).
    const compacted = (n: number) => until(() => compactions >= n, 60_000, () => `${compactions} of ${n} compactions`);
    await compacted(1);
    const before = compactions;
    await writer(cfg, 1000, 100);
    const during = compactions - before;
    await until(() => counts(seen).size === 1000, 20_000, () => `${counts(seen).size} of 1000 CLI events; missing ${Array.from({ length: 1000 }, (_, i) => `cli ${i}`).filter((d) => !counts(seen).has(d)).slice(0, 10).join(', ')}`);
    await compacted(3);
    stop = true;
    await noise;
    console.log(`follow under compaction: ${compactions} compactions, ${during} of them while the CLI ran; duplicates: ${[...counts(seen).values()].filter((n) => n > 1).length}`);
    expect([...counts(seen)].filter(([, n]) => n !== 1)).toEqual([]);
    await server.close();
    const again = await FileEventLog.open(cfg.dataDir, silentLogger(), undefined, undefined, { follow: false });
    const kept: BootEvent[] = [];
    for (let m = 0; m < 20; m++) kept.push(...again.timeline(`52:54:00:77:00:${m.toString(16).padStart(2, '0')}`));
    expect(counts(kept).size).toBe(1000);
    await again.close();
  }, 90_000);

  it('a process that only appends (its timelines not loaded) never compacts the file over the limit', async () => {
    const cfg = source();
    const limits = { maxFileBytes: 4096 };
    const server = await FileEventLog.open(cfg.dataDir, silentLogger(), undefined, limits, { follow: false });
    for (let i = 0; i < 100; i++) server.emit({ mac: '52:54:00:00:02:01', host: 'w101', stage: 'dhcp-ack', detail: `kept ${i} ${'x'.repeat(40)}` });
    await server.close();
    const cli = await FileEventLog.open(cfg.dataDir, silentLogger(), undefined, limits, { follow: false, load: false });
    cli.emit({ mac: '52:54:00:00:02:01', host: 'w101', stage: 'power-request', detail: 'from the CLI' });
    await cli.close();
    const again = await FileEventLog.open(cfg.dataDir, silentLogger(), undefined, undefined, { follow: false });
    expect(again.timeline('52:54:00:00:02:01').map((e) => e.detail?.split(' ').slice(0, 2).join(' '))).toEqual([
      ...Array.from({ length: 100 }, (_, i) => `kept ${i}`), 'from the',
    ]);
    await again.close();
  });

  it('a partial last line waits until it is complete; a rotated file is followed from its start', async () => {
    const cfg = source();
    const server = await openState(cfg, { logger: silentLogger(), parts: ['events'] });
    const seen: BootEvent[] = [];
    server.events.subscribe((e) => seen.push(e));
    const file = join(cfg.dataDir, 'events.jsonl');
    const line = JSON.stringify({ mac: '52:54:00:77:00:01', host: 'cli-1', stage: 'power-done', at: new Date().toISOString(), detail: 'half a line' });
    appendFileSync(file, line.slice(0, 40));
    await new Promise((r) => setTimeout(r, 1500));
    expect(seen).toHaveLength(0);
    appendFileSync(file, `${line.slice(40)}\n`);
    await until(() => seen.length === 1, 3000, () => `${seen.length} events`);
    expect(seen[0]!.detail).toBe('half a line');
    // logrotate-style: the file moved away, a new one started by another process.
    renameSync(file, `${file}.1`);
    await writer(cfg, 20);
    await until(() => counts(seen).size === 20, 20_000, () => `${counts(seen).size} of 20`);
    expect(seen).toHaveLength(21);
    await server.close();
  }, 120_000);
});
