/**
 * API tokens (src/http/auth.ts) on the real app: every route that reveals the inventory, leases or boot
 * history needs a read token, changes need an admin token, machines' own boot routes need none.
 * Regression for issue 16 item 7: the lease list, the event stream and timelines were open to anyone.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../../src/http/app.js';
import { authFailure, tokenLevel, tokensFrom } from '../../../src/http/auth.js';
import { openFileState } from '../../../src/state/file/index.js';
import { InventoryStore } from '../../../src/inventory/watch.js';
import { defaultConfig, type ServerConfig } from '../../../src/config.js';
import { silentLogger } from '../../../src/log.js';

const ROOT = resolve(import.meta.dirname, '../../..');
const dir = mkdtempSync(join(tmpdir(), 'rolecast-auth-'));
const W101 = '52:54:00:00:02:01';
const ADMIN = 'admin-token-1';
const LEGACY = 'legacy-admin';
const READ = 'read-token-1';
const READ_ROUTES = ['/api/machines', '/api/machines/w101', `/api/machines/${W101}/events`, '/api/leases', '/api/events'];
const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

let inv: InventoryStore;
const apps: FastifyInstance[] = [];

async function appWith(http: Partial<ServerConfig['http']>): Promise<FastifyInstance> {
  const base = defaultConfig();
  const cfg: ServerConfig = { ...base, profilesDir: join(dir, 'profiles'), dataDir: join(dir, 'data'), imagesDir: join(dir, 'images'), address: '10.0.0.1', http: { ...base.http, ...http } };
  const state = await openFileState(cfg.dataDir, cfg.profilesDir, silentLogger());
  const app = await buildApp({ getInventory: () => inv.current(), config: cfg, logger: silentLogger(), state });
  apps.push(app);
  return app;
}

/** GET a route; the SSE stream is read on a listening socket (inject would wait for its end). */
async function get(app: FastifyInstance, url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string; wwwAuth?: string }> {
  if (url !== '/api/events') {
    const r = await app.inject({ url, headers });
    return { status: r.statusCode, body: r.body, wwwAuth: r.headers['www-authenticate'] as string | undefined };
  }
  const addr = app.server.listening ? `http://127.0.0.1:${(app.server.address() as { port: number }).port}` : await app.listen({ host: '127.0.0.1', port: 0 });
  const ctrl = new AbortController();
  const res = await fetch(`${addr}${url}`, { headers, signal: ctrl.signal });
  const reader = res.body!.getReader();
  const first = new TextDecoder().decode((await reader.read()).value);
  ctrl.abort();
  return { status: res.status, body: first, wwwAuth: res.headers.get('www-authenticate') ?? undefined };
}

beforeAll(async () => {
  cpSync(join(ROOT, 'test/fixtures/profiles'), join(dir, 'profiles'), { recursive: true });
  inv = await InventoryStore.open(join(dir, 'profiles'), silentLogger());
});
afterAll(async () => {
  for (const a of apps) await a.close();
  inv.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('token levels (pure)', () => {
  const t = tokensFrom({ token: LEGACY, tokens: { admin: [ADMIN], read: [READ, ''] } });

  it('the single http.token is one more admin token; empty tokens never match', () => {
    expect(tokenLevel(t, `Bearer ${LEGACY}`)).toBe('admin');
    expect(tokenLevel(t, `Bearer ${ADMIN}`)).toBe('admin');
    expect(tokenLevel(t, `Bearer ${READ}`)).toBe('read');
    expect(tokenLevel(t, 'Bearer ')).toBeUndefined();
    expect(tokenLevel(t, 'Bearer')).toBeUndefined();
    expect(tokenLevel(t, undefined)).toBeUndefined();
  });

  it('prefixes, suffixes, other lengths and other schemes are refused', () => {
    for (const h of [`Bearer ${ADMIN.slice(0, -1)}`, `Bearer ${ADMIN}x`, `Basic ${ADMIN}`, ADMIN, `Bearer ${ADMIN} ${ADMIN}`, `Bearer ${'a'.repeat(10_000)}`, `Bearer ${READ.toUpperCase()}`]) {
      expect(tokenLevel(t, h), h).toBeUndefined();
    }
  });

  it('one error shape: 401 for no or unknown token, 403 for too low a level or none configured', () => {
    expect(authFailure(t, 'read', undefined)).toMatchObject({ status: 401, code: 'E_UNAUTHORISED' });
    expect(authFailure(t, 'admin', `Bearer ${READ}`)).toMatchObject({ status: 403, code: 'E_FORBIDDEN' });
    expect(authFailure(t, 'read', `Bearer ${ADMIN}`)).toBeUndefined();
    expect(authFailure(tokensFrom({}), 'read', `Bearer ${READ}`)).toMatchObject({ status: 403, code: 'E_NO_TOKEN' });
    expect(authFailure(tokensFrom({ tokens: { read: [READ] } }), 'admin', `Bearer ${READ}`)).toMatchObject({ status: 403, code: 'E_NO_TOKEN' });
  });
});

describe('routes', () => {
  let app: FastifyInstance;
  beforeAll(async () => { app = await appWith({ token: LEGACY, tokens: { admin: [ADMIN], read: [READ] } }); });

  it('every read route: 401 without a token or with a wrong one, 200 with a read or an admin token', async () => {
    for (const url of READ_ROUTES) {
      const none = await get(app, url);
      expect(none.status, url).toBe(401);
      expect(JSON.parse(none.body), url).toMatchObject({ code: 'E_UNAUTHORISED', message: expect.stringContaining('Bearer') });
      expect(none.wwwAuth, url).toMatch(/^Bearer/);
      expect(none.body, url).not.toMatch(/w101|52:54:00/);
      expect((await get(app, url, bearer('nope'))).status, url).toBe(401);
      expect((await get(app, url, bearer(READ))).status, url).toBe(200);
      expect((await get(app, url, bearer(ADMIN))).status, url).toBe(200);
    }
  });

  it('the role change needs an admin token: 401 without, 403 with a read token', async () => {
    const put = (h: Record<string, string>) => app.inject({ method: 'PUT', url: '/api/machines/w106/role', headers: h, payload: { role: 'web' } });
    expect((await put({})).statusCode).toBe(401);
    const ro = await put(bearer(READ));
    expect([ro.statusCode, ro.json().code]).toEqual([403, 'E_FORBIDDEN']);
    expect((await put(bearer(ADMIN))).statusCode).toBe(200);
    expect((await put(bearer(LEGACY))).statusCode).toBe(200);
  });

  it('machines\' own boot routes and health stay token-free', async () => {
    for (const url of [`/boot/${W101}.ipxe`, '/boot.ipxe', `/boot/${W101}/grub.cfg`, '/healthz', `/files/${W101}/etc/hostname`]) {
      expect((await app.inject(url)).statusCode, url).toBe(200);
    }
    expect((await app.inject('/images/kernel')).statusCode).toBe(500); // named in the inventory but missing on disk: our failure (500), not an auth refusal
  });
});

describe('no tokens configured', () => {
  it('read and admin routes are off (403 E_NO_TOKEN), not open', async () => {
    const app = await appWith({});
    for (const url of READ_ROUTES) {
      const r = await get(app, url);
      expect(r.status, url).toBe(403);
      expect(JSON.parse(r.body), url).toMatchObject({ code: 'E_NO_TOKEN' });
    }
    expect((await app.inject({ method: 'PUT', url: '/api/machines/w106/role', payload: { role: 'web' } })).json()).toMatchObject({ code: 'E_NO_TOKEN' });
  });
});
