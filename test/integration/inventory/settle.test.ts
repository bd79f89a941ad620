/**
 * Reload safety (issue 16 item 4), on real files with the real fs.watch: a half-written machines.yaml
 * that happens to parse (the first lines of the file: 2 machines of 10) must never go live, and a
 * reload that would drop more than maxDropShare of the machines waits for confirmation.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { appendFileSync, cpSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pino } from 'pino';
import type { Logger } from '../../../src/log.js';
import { InventoryStore } from '../../../src/inventory/watch.js';
import { loadInventory } from '../../../src/inventory/index.js';
import { waitFor } from '../../helpers/netns.js';
import { rolecastHere } from '../cli/helpers.js';
import { buildApp } from '../../../src/http/app.js';
import { openFileState } from '../../../src/state/file/index.js';
import { defaultConfig } from '../../../src/config.js';
import { silentLogger } from '../../../src/log.js';

const PROFILES = resolve(import.meta.dirname, '../../fixtures/profiles');
const dirs: string[] = [];
const stores: InventoryStore[] = [];
afterEach(() => {
  for (const s of stores.splice(0)) s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function copy(): { dir: string; file: string; text: string } {
  const dir = mkdtempSync(join(tmpdir(), 'rolecast-settle-'));
  dirs.push(dir);
  cpSync(PROFILES, dir, { recursive: true });
  const file = join(dir, 'machines.yaml');
  return { dir, file, text: readFileSync(file, 'utf8') };
}

function logCapture(): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino({ level: 'info' }, { write: (s: string) => { lines.push(JSON.parse(s) as Record<string, unknown>); } }) as unknown as Logger;
  return { logger, lines };
}

// Reloads run on a loader thread that, from source, registers the TypeScript loader each time: seconds
// under load, so the waits are generous (they end as soon as the reload lands).
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** The file up to and including lb2's line: valid YAML, valid profiles, 2 machines. */
const firstTwo = (text: string) => text.slice(0, text.indexOf('\n', text.indexOf('host: lb2')) + 1);

describe('settle: a file still being written is never applied', { timeout: 120_000 }, () => {
  it('a writer that pauses mid-file (the part written so far parses) does not swap in the partial inventory', async () => {
    const { dir, file, text } = copy();
    const head = firstTwo(text);
    // The premise: the head alone is a valid profile set with 2 machines.
    const probeDir = mkdtempSync(join(tmpdir(), 'rolecast-settle-probe-'));
    dirs.push(probeDir);
    cpSync(dir, probeDir, { recursive: true });
    writeFileSync(join(probeDir, 'machines.yaml'), head);
    expect((await loadInventory(probeDir)).machines).toHaveLength(2);

    const store = await InventoryStore.open(dir, logCapture().logger, { settleMs: 1500, maxDropShare: 1 });
    stores.push(store);
    store.watch();
    const swaps: number[] = [];
    store.onSwap((inv) => swaps.push(inv.machines.length));
    const full = text.replace('role: web, ip: 10.0.0.106', 'role: lb, ip: 10.0.0.106');
    // A slow writer (a copy over a network share, an editor without rename): head, pause, the rest.
    writeFileSync(file, head);
    await sleep(400);
    appendFileSync(file, full.slice(head.length, head.length + 200));
    await sleep(400);
    appendFileSync(file, full.slice(head.length + 200));
    await waitFor(() => store.current().byHost.get('w106')?.role === 'lb', 40_000);
    expect(swaps).toEqual([10]);
  });
});

describe('drop guard', { timeout: 120_000 }, () => {
  it('holds back a reload that drops 8 of 10 machines and says so; force applies it', async () => {
    const { dir, file, text } = copy();
    const { logger, lines } = logCapture();
    const store = await InventoryStore.open(dir, logger, { settleMs: 100, maxDropShare: 0.25 });
    stores.push(store);
    store.watch();
    const before = store.current();
    writeFileSync(`${file}.tmp`, firstTwo(text));
    renameSync(`${file}.tmp`, file);
    await waitFor(() => store.lastReload()?.held !== undefined, 40_000);
    expect(store.current()).toBe(before);
    expect(store.lastReload()?.held).toMatchObject({ dropped: ['w101', 'w102', 'w103', 'w104', 'db1', 'db2', 'fs1', 'w106'], machines: 10 });
    expect(lines.find((l) => String(l.msg).startsWith('profile reload held back'))?.msg).toMatch(/drop 8 of 10 machines .*SIGHUP or run `rolecast reload --force`/);
    // Still held on a plain reload; applied when confirmed.
    expect((await store.reload()).held).toBeDefined();
    expect(await store.reload({ force: true })).toMatchObject({ ok: true, changed: true });
    expect(store.current().machines).toHaveLength(2);
  });

  it('a small drop (1 of 10) applies without confirmation', async () => {
    const { dir, file, text } = copy();
    const store = await InventoryStore.open(dir, logCapture().logger, { settleMs: 100, maxDropShare: 0.25 });
    stores.push(store);
    store.watch();
    writeFileSync(`${file}.tmp`, text.split('\n').filter((l) => !l.includes('host: w106')).join('\n'));
    renameSync(`${file}.tmp`, file);
    await waitFor(() => store.current().machines.length === 9, 40_000);
    expect(store.lastReload()).toMatchObject({ ok: true });
  });
});

describe('rolecast reload [--force] against a running server', { timeout: 120_000 }, () => {
  it('reports a held reload (exit 1) and applies it with --force; needs an admin token', async () => {
    const { dir, file, text } = copy();
    const store = await InventoryStore.open(dir, silentLogger(), { settleMs: 100, maxDropShare: 0.25 });
    stores.push(store);
    const cfg = { ...defaultConfig(), profilesDir: dir, dataDir: join(dir, 'data'), address: '10.0.0.1' };
    cfg.http = { ...cfg.http, tokens: { admin: ['reload-admin'], read: ['reload-read'] } };
    const app = await buildApp({ getInventory: () => store.current(), config: cfg, logger: silentLogger(), state: await openFileState(cfg.dataDir, dir, silentLogger()), reloadNow: (force) => store.reload({ force }) });
    const url = await app.listen({ host: '127.0.0.1', port: 0 });
    try {
      writeFileSync(file, firstTwo(text));
      const env = process.env.ROLECAST_TOKEN;
      try {
        process.env.ROLECAST_TOKEN = 'reload-read';
        expect(await rolecastHere(['reload', '--url', url, '--profiles', PROFILES])).toMatchObject({ code: 1, stdout: expect.stringMatching(/403: this route needs an admin token/) });
        process.env.ROLECAST_TOKEN = 'reload-admin';
        const held = await rolecastHere(['reload', '--url', url, '--profiles', PROFILES]);
        expect(held).toMatchObject({ code: 1, stdout: expect.stringMatching(/^held back: the new profiles would drop 8 of 10 machines \(w101, .*w106\); run rolecast reload --force/) });
        expect(store.current().machines).toHaveLength(10);
        const forced = await rolecastHere(['reload', '--force', '--url', url, '--profiles', PROFILES]);
        expect(forced).toMatchObject({ code: 0, stdout: expect.stringMatching(/^reloaded: version [0-9a-f]{12}, 2 machines/) });
        expect(store.current().machines).toHaveLength(2);
      } finally {
        if (env === undefined) delete process.env.ROLECAST_TOKEN; else process.env.ROLECAST_TOKEN = env;
      }
    } finally {
      await app.close();
    }
  });
});
