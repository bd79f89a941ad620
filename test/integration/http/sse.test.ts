/**
 * The boot-event stream as a browser's EventSource uses it: ids on every event, a heartbeat comment while
 * idle, and resumption with Last-Event-ID after a dropped connection (missed events replayed in order), or
 * `event: reset` when they are no longer kept.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../../src/http/app.js';
import { openFileState } from '../../../src/state/file/index.js';
import type { State } from '../../../src/state/types.js';
import { InventoryStore } from '../../../src/inventory/watch.js';
import { defaultConfig } from '../../../src/config.js';
import { silentLogger } from '../../../src/log.js';

const ROOT = resolve(import.meta.dirname, '../../..');
const dir = mkdtempSync(join(tmpdir(), 'rolecast-sse-'));
const READ = 'sse-read-token-0123456789abcdef';
const W101 = '52:54:00:00:02:01';
let app: FastifyInstance;
let inv: InventoryStore;
let state: State;
let base: string;

beforeAll(async () => {
  cpSync(join(ROOT, 'test/fixtures/profiles'), join(dir, 'profiles'), { recursive: true });
  const cfg = { ...defaultConfig(), profilesDir: join(dir, 'profiles'), dataDir: join(dir, 'data'), imagesDir: join(dir, 'images'), address: '10.0.0.1' };
  cfg.http = { ...cfg.http, tokens: { read: [READ] } };
  inv = await InventoryStore.open(cfg.profilesDir, silentLogger());
  state = await openFileState(cfg.dataDir, cfg.profilesDir, silentLogger());
  app = await buildApp({ getInventory: () => inv.current(), config: cfg, logger: silentLogger(), state, sse: { keep: 5, heartbeatMs: 150 } });
  base = await app.listen({ host: '127.0.0.1', port: 0 });
});
afterAll(async () => { await app.close(); await state.close(); inv.close(); rmSync(dir, { recursive: true, force: true }); });

/** Open the stream; read() returns the text received so far once `until` matches it. */
async function open(lastId?: string): Promise<{ until(re: RegExp, ms?: number): Promise<string>; close(): void }> {
  const ctrl = new AbortController();
  const res = await fetch(`${base}/api/events`, { signal: ctrl.signal, headers: { authorization: `Bearer ${READ}`, ...(lastId ? { 'last-event-id': lastId } : {}) } });
  expect(res.headers.get('content-type')).toBe('text/event-stream');
  const reader = res.body!.getReader();
  const dec = new TextDecoder();
  let text = '';
  return {
    async until(re, ms = 5000) {
      const deadline = Date.now() + ms;
      while (!re.test(text)) {
        if (Date.now() > deadline) throw new Error(`no ${re} in:\n${text}`);
        const { value, done } = await reader.read();
        if (done) throw new Error(`stream ended:\n${text}`);
        text += dec.decode(value);
      }
      return text;
    },
    close() { ctrl.abort(); },
  };
}

const post = (detail: string) => app.inject({ method: 'POST', url: `/api/machines/${W101}/events`, payload: { stage: 'failed', detail } });
const ids = (t: string) => [...t.matchAll(/^id: (\S+)$/gm)].map((m) => m[1]!);

it('sends ids and heartbeats, and resumes from Last-Event-ID', async () => {
  const a = await open();
  await a.until(/retry: 3000/);
  await post('one');
  const first = await a.until(/"detail":"one"/);
  const lastSeen = ids(first).at(-1)!;
  expect(lastSeen).toMatch(/^[0-9a-z]+-\d+$/);
  expect(await a.until(/: heartbeat\n\n/, 2000)).toMatch(/: heartbeat/);
  a.close();

  await post('two');
  await post('three');
  const b = await open(lastSeen);
  const resumed = await b.until(/"detail":"three"/);
  expect(resumed).not.toMatch(/"detail":"one"/);
  expect(resumed.indexOf('"detail":"two"')).toBeLessThan(resumed.indexOf('"detail":"three"'));
  expect(ids(resumed)).toHaveLength(2);
  b.close();
});

it('says reset when the missed events are gone or the id is from another run', async () => {
  const c = await open('0zz-1');
  expect(await c.until(/event: reset\n/)).toMatch(/re-read the state/);
  c.close();
  const d = await open();
  await d.until(/retry/);
  for (let i = 0; i < 8; i++) await post(`burst ${i}`);
  const t = await d.until(/burst 7/);
  const oldest = ids(t)[0]!;
  d.close();
  const e = await open(oldest); // 7 newer events, only 5 kept
  expect(await e.until(/event: reset\n/)).not.toMatch(/burst/);
  e.close();
});
