/// <reference lib="dom" />
/**
 * The fleet page at 10,000 machines in real Chromium (server on 127.0.0.1): interactive — table drawn
 * and a search answered — within a generous bound of the 2 s, and a burst of 1,000 SSE events
 * leaves it responsive (longest frame gap and a search typed mid-burst measured in the page with
 * performance.now()). The numbers measured are printed for the report.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { spawnSync } from 'node:child_process';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../../src/http/app.js';
import { openFileState } from '../../../src/state/file/index.js';
import type { EventLog, State } from '../../../src/state/types.js';
import { InventoryStore } from '../../../src/inventory/watch.js';
import { defaultConfig, type ServerConfig } from '../../../src/config.js';
import { silentLogger } from '../../../src/log.js';
import { describeBrowser, launchBrowser, login, screenshot, type Browser } from '../../helpers/browser.js';

const ROOT = resolve(import.meta.dirname, '../../..');
const N = 10_000;
const TOKEN = 'scale-admin-token';

/** The bundled profiles plus N one-line machines on a /16 (role test). */
function bigProfiles(dir: string): void {
  cpSync(join(ROOT, 'test/fixtures/profiles'), dir, { recursive: true });
  const site = join(dir, 'rolecast.yaml');
  writeFileSync(site, readFileSync(site, 'utf8').replace('cidr: 10.0.0.0/24', 'cidr: 10.0.0.0/16'));
  const lines: string[] = [];
  for (let i = 0; i < N; i++) {
    const hex = i.toString(16).padStart(4, '0');
    lines.push(`  - { host: n${String(i).padStart(5, '0')}, mac: 52:54:01:00:${hex.slice(0, 2)}:${hex.slice(2)}, role: test, ip: 10.0.${10 + Math.floor(i / 250)}.${(i % 250) + 1} }`);
  }
  const file = join(dir, 'machines.yaml');
  writeFileSync(file, `${readFileSync(file, 'utf8').trimEnd()}\n${lines.join('\n')}\n`);
}

const macOf = (i: number) => { const hex = i.toString(16).padStart(4, '0'); return `52:54:01:00:${hex.slice(0, 2)}:${hex.slice(2)}`; };

describeBrowser('web UI at 10,000 machines', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rolecast-ui-scale-'));
  let inv: InventoryStore;
  let events: EventLog;
  let state: State | undefined;
  let app: FastifyInstance;
  let base = '';
  let b: Browser;
  let total = 0;

  beforeAll(async () => {
    spawnSync(process.execPath, [join(ROOT, 'scripts/build-ui.mjs')], { stdio: 'inherit' });
    bigProfiles(join(dir, 'profiles'));
    inv = await InventoryStore.open(join(dir, 'profiles'), silentLogger());
    total = inv.current().machines.length;
    const d = defaultConfig();
    const cfg: ServerConfig = { ...d, profilesDir: join(dir, 'profiles'), dataDir: join(dir, 'data'), imagesDir: join(dir, 'images'), address: '127.0.0.1', http: { ...d.http, tokens: { admin: [TOKEN] } } };
    state = await openFileState(cfg.dataDir, cfg.profilesDir, silentLogger());
    events = state.events;
    app = await buildApp({ getInventory: () => inv.current(), config: cfg, logger: silentLogger(), state });
    base = await app.listen({ host: '127.0.0.1', port: 0 });
    b = await launchBrowser();
  }, 120_000);

  afterAll(async () => {
    await b?.close();
    await app?.close();
    await state?.close();
    inv?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it(`the fleet page is interactive quickly with ${N} machines`, async () => {
    await login(b.page, base, TOKEN);
    // Measure a fresh load of the fleet: navigation start → table drawn → a search answered.
    await b.page.goto(`${base}/ui/#/`);
    const drawn = await (await b.page.waitForFunction((n) => {
      const c = document.querySelector('[data-testid="fleet-count"]');
      return c?.textContent === `${n} of ${n} machines` && document.querySelectorAll('tbody tr[data-host]').length > 0 ? performance.now() : false;
    }, total, { timeout: 30_000, polling: 'raf' })).jsonValue() as number;
    const t0 = await b.page.evaluate(() => performance.now());
    await b.page.getByLabel('Search').fill('n09999');
    await b.page.waitForFunction(() => document.querySelector('[data-testid="fleet-count"]')?.textContent?.startsWith('1 of '), undefined, { polling: 'raf' });
    const searched = await b.page.evaluate(() => performance.now());
    const interactive = searched - t0 + drawn;
    console.log(`[ui-scale] ${total} machines: table drawn ${drawn.toFixed(0)} ms after navigation start, search answered in ${(searched - t0).toFixed(0)} ms; interactive at ${interactive.toFixed(0)} ms`);
    // The target is 2 s; this machine is shared by ~9 agents, so the bound is generous (the
    // number measured is what the report gives).
    expect(interactive).toBeLessThan(6000);
    // Only the rows in view are in the DOM.
    expect(await b.page.locator('tbody tr[data-host]').count()).toBeLessThan(80);
    await b.page.getByLabel('Search').fill('');
    await screenshot(b.page, 'fleet-10000');
  }, 60_000);

  it('a burst of 1,000 SSE events does not freeze the page', async () => {
    await b.page.waitForFunction(() => (window as unknown as { rolecastLive: { state: string } }).rolecastLive.state === 'live');
    // Frame heartbeat: the longest gap between animation frames while the burst lands.
    await b.page.evaluate(() => {
      const w = window as unknown as { maxGap: number; beat: boolean };
      w.maxGap = 0; w.beat = true;
      let last = performance.now();
      const tick = (t: number) => { w.maxGap = Math.max(w.maxGap, t - last); last = t; if (w.beat) requestAnimationFrame(tick); };
      requestAnimationFrame(tick);
    });
    const before = await b.page.evaluate(() => (window as unknown as { rolecastLive: { received: number } }).rolecastLive.received);
    const t0 = Date.now();
    for (let i = 0; i < 1000; i++) events.emit({ mac: macOf(i), host: `n${String(i).padStart(5, '0')}`, stage: i % 2 ? 'booted' : 'http-rootfs', detail: 'burst' });
    // Typed while the burst arrives: the search must still answer.
    const s0 = Date.now();
    await b.page.getByLabel('Search').fill('n00001');
    await b.page.waitForFunction(() => document.querySelector('[data-testid="fleet-count"]')?.textContent?.startsWith('1 of '), undefined, { polling: 'raf', timeout: 10_000 });
    const searchMs = Date.now() - s0;
    await b.page.waitForFunction((n) => (window as unknown as { rolecastLive: { received: number } }).rolecastLive.received >= n, before + 1000, { timeout: 20_000 });
    const allMs = Date.now() - t0;
    const gap = await b.page.evaluate(() => { const w = window as unknown as { maxGap: number; beat: boolean }; w.beat = false; return w.maxGap; });
    console.log(`[ui-scale] 1000 SSE events: all applied ${allMs} ms after the first was sent; longest frame gap ${gap.toFixed(0)} ms; search typed mid-burst answered in ${searchMs} ms`);
    expect(gap).toBeLessThan(1000);
    expect(searchMs).toBeLessThan(3000);
    // The burst's stages are on screen: n00001 got "booted".
    await expect.poll(() => b.page.locator('tr[data-host="n00001"] [data-testid="stage"]').textContent()).toBe('booted');
  }, 60_000);

  it('is keyboard usable: "/" focuses the search, Tab reaches a machine, Enter opens it', async () => {
    await b.page.getByLabel('Search').fill('');
    await b.page.locator('h2').first().click();
    await b.page.keyboard.press('/');
    expect(await b.page.evaluate(() => document.activeElement?.id)).toBe('fleet-search');
    await b.page.keyboard.type('n00042');
    await b.page.waitForFunction(() => document.querySelector('[data-testid="fleet-count"]')?.textContent?.startsWith('1 of '));
    // search → role → stage → "next boot changes" → the table → its first link
    for (let i = 0; i < 5; i++) await b.page.keyboard.press('Tab');
    expect(await b.page.evaluate(() => document.activeElement?.textContent)).toBe('n00042');
    await b.page.keyboard.press('Enter');
    await b.page.waitForSelector('[data-testid="yaml-line"]');
    expect(await b.page.getByTestId('yaml-line').textContent()).toContain('host: n00042');
    await b.page.goBack();
    await b.page.waitForSelector('[data-testid="fleet-count"]');
  });

  it('is readable at phone width', async () => {
    await b.page.setViewportSize({ width: 390, height: 844 });
    await b.page.getByLabel('Search').fill('');
    await b.page.waitForSelector('tr[data-host="n00000"]');
    const overflow = await b.page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    expect(overflow, 'no horizontal scrolling of the page at 390 px').toBeLessThanOrEqual(0);
    await screenshot(b.page, 'fleet-phone');
    await b.page.setViewportSize({ width: 1280, height: 800 });
  });
});
