/**
 * Debian's Chromium driven through playwright-core (nothing downloads a browser): headless, no sandbox
 * (tests run as root), no background traffic, a fresh profile directory per launch. With `netns`, the
 * browser runs inside that network namespace (through `ip netns exec`), so it reaches a server that
 * listens only there.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, chmodSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, it } from 'vitest';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { inCI } from './netns.js';

export const CHROMIUM = '/usr/bin/chromium';
export const CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
export const ARTIFACTS = resolve(import.meta.dirname, '../../test-artifacts/ui');

/** describe() for browser tests: skips loudly without Chromium; under CI a skip is a failure. */
export function describeBrowser(name: string, fn: () => void): void {
  if (existsSync(CHROMIUM)) { describe(name, fn); return; }
  const msg = `SKIPPED browser test "${name}": ${CHROMIUM} is missing (apt-get install chromium)`;
  console.warn(`\n*** ${msg} ***\n`);
  if (inCI) describe(name, () => { it('prerequisites', () => { throw new Error(msg); }); });
  else describe.skip(name, fn);
}

export interface Browser {
  context: BrowserContext;
  page: Page;
  close(): Promise<void>;
}

export async function launchBrowser(opts: { netns?: string; viewport?: { width: number; height: number }; headers?: Record<string, string> } = {}): Promise<Browser> {
  const dir = mkdtempSync(join(tmpdir(), 'rolecast-chromium-'));
  let executablePath = CHROMIUM;
  if (opts.netns) {
    // playwright talks to Chromium over inherited pipes (fds 3 and 4); `ip netns exec` keeps them.
    executablePath = join(dir, 'chromium-in-netns');
    writeFileSync(executablePath, `#!/bin/sh\nexec ip netns exec ${opts.netns} ${CHROMIUM} "$@"\n`);
    chmodSync(executablePath, 0o755);
  }
  const profile = join(dir, 'profile');
  mkdirSync(profile);
  const context = await chromium.launchPersistentContext(profile, {
    executablePath, headless: true, chromiumSandbox: false, args: CHROMIUM_FLAGS,
    viewport: opts.viewport ?? { width: 1280, height: 800 },
    ...(opts.headers ? { extraHTTPHeaders: opts.headers } : {}),
  });
  const page = context.pages()[0] ?? await context.newPage();
  return {
    context, page,
    async close() {
      await context.close().catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A PNG under test-artifacts/ui (kept by CI as evidence). */
export async function screenshot(page: Page, name: string, fullPage = false): Promise<string> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const file = join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage });
  return file;
}

/** Log in through the form, as an operator would. */
export async function login(page: Page, base: string, token: string): Promise<void> {
  await page.goto(`${base}/ui/login`);
  await page.getByLabel('API token').fill(token);
  // Wait for the form post's answer and the page it leads to, so the next navigation cannot race it.
  const answer = page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/ui/login');
  await page.getByRole('button', { name: 'Log in' }).click();
  const r = await answer;
  if (r.status() === 303) await page.waitForURL((u) => u.pathname === '/ui/');
  await page.waitForLoadState('domcontentloaded');
}
