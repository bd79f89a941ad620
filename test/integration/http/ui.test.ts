/**
 * The web UI's server side on the real app: login gives an HttpOnly SameSite=Strict session cookie of
 * the token's level, the cookie works on the API only with the CSRF header on changes, a wrong token
 * and a cross-site form get nothing, and the UI's own routes (fleet, files without secrets, boot-once,
 * profile status) answer as documented.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../../src/http/app.js';
import { openFileState } from '../../../src/state/file/index.js';
import type { EventLog, State } from '../../../src/state/types.js';
import { InventoryStore } from '../../../src/inventory/watch.js';
import { defaultConfig, type ServerConfig } from '../../../src/config.js';
import { silentLogger } from '../../../src/log.js';
import { Sessions } from '../../../src/http/ui/session.js';
import { firmwareSeen, lastPower } from '../../../src/http/fleet.js';
import { plannedRow } from '../../../src/http/machines.js';
import { loadImageView } from '../../../src/images/view.js';

const ROOT = resolve(import.meta.dirname, '../../..');
const dir = mkdtempSync(join(tmpdir(), 'rolecast-ui-'));
const ADMIN = 'ui-admin-token';
const READ = 'ui-read-token';
const form = { 'content-type': 'application/x-www-form-urlencoded', host: 'rc.test' };

let inv: InventoryStore;
let app: FastifyInstance;
let events: EventLog;
let power: State['power'];
let served: State['served'];

async function login(token: string): Promise<{ cookie: string; csrf: string; status: number; setCookie: string }> {
  const r = await app.inject({ method: 'POST', url: '/ui/login', headers: form, payload: `token=${encodeURIComponent(token)}` });
  const setCookie = String(r.headers['set-cookie'] ?? '');
  const cookie = setCookie.split(';')[0] ?? '';
  if (r.statusCode !== 303) return { cookie: '', csrf: '', status: r.statusCode, setCookie };
  const shell = await app.inject({ url: '/ui/', headers: { cookie } });
  const csrf = /name="rolecast-csrf" content="([^"]*)"/.exec(shell.body)?.[1] ?? '';
  return { cookie, csrf, status: r.statusCode, setCookie };
}

beforeAll(async () => {
  cpSync(join(ROOT, 'test/fixtures/profiles'), join(dir, 'profiles'), { recursive: true });
  const profiles = join(dir, 'profiles');
  inv = await InventoryStore.open(profiles, silentLogger());
  const base = defaultConfig();
  const cfg: ServerConfig = { ...base, profilesDir: profiles, dataDir: join(dir, 'data'), imagesDir: join(dir, 'images'), address: '10.0.0.1', http: { ...base.http, tokens: { admin: [ADMIN], read: [READ] } } };
  const state = await openFileState(cfg.dataDir, cfg.profilesDir, silentLogger());
  events = state.events;
  power = state.power;
  served = state.served;
  app = await buildApp({
    getInventory: () => inv.current(), config: cfg, logger: silentLogger(), state, reload: () => inv.reload(),
    lastReload: () => inv.lastReload(),
  });
});
afterAll(async () => {
  await app.close();
  await events.close();
  inv.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('UI access', () => {
  it('sends the login form to a request without a session, and refuses a wrong token', async () => {
    const r = await app.inject({ url: '/ui/' });
    expect(r.statusCode).toBe(303);
    expect(r.headers.location).toBe('/ui/login');
    const bad = await login('not-a-token');
    expect(bad.status).toBe(401);
    expect(bad.setCookie).toBe('');
    const page = await app.inject({ method: 'POST', url: '/ui/login', headers: form, payload: 'token=nope' });
    expect(page.body).toContain('That token was refused.');
  });

  it('logs in with a token: HttpOnly SameSite=Strict cookie, the shell, the API by cookie', async () => {
    const s = await login(ADMIN);
    expect(s.status).toBe(303);
    expect(s.setCookie).toMatch(/^rolecast_session=[\w-]{40,}; Path=\/; HttpOnly; SameSite=Strict; Max-Age=\d+$/);
    expect(s.setCookie).not.toContain(ADMIN);
    expect(s.csrf.length).toBeGreaterThan(20);
    expect((await app.inject({ url: '/api/fleet', headers: { cookie: s.cookie } })).statusCode).toBe(200);
    const shell = await app.inject({ url: '/ui/', headers: { cookie: s.cookie } });
    expect(shell.headers['content-security-policy']).toContain("default-src 'none'");
    expect(shell.body).toContain('<meta name="rolecast-level" content="admin">');
  });

  it('a change by cookie needs the CSRF header and a same-origin Origin', async () => {
    const s = await login(ADMIN);
    const body = { role: 'web' };
    const noCsrf = await app.inject({ method: 'PUT', url: '/api/machines/w106/role', headers: { cookie: s.cookie }, payload: body });
    expect(noCsrf.statusCode).toBe(401);
    const cross = await app.inject({ method: 'PUT', url: '/api/machines/w106/role', headers: { cookie: s.cookie, 'x-rolecast-csrf': s.csrf, origin: 'http://evil.example', host: 'rc.test' }, payload: body });
    expect(cross.statusCode).toBe(401);
    const ok = await app.inject({ method: 'PUT', url: '/api/machines/w106/role', headers: { cookie: s.cookie, 'x-rolecast-csrf': s.csrf, origin: 'http://rc.test', host: 'rc.test' }, payload: body });
    expect(ok.statusCode, ok.body).toBe(200);
  });

  it('a read-only session reads but cannot change; a bearer header is accepted on the page', async () => {
    const s = await login(READ);
    expect((await app.inject({ url: '/api/machines', headers: { cookie: s.cookie } })).statusCode).toBe(200);
    const put = await app.inject({ method: 'PUT', url: '/api/machines/w106/role', headers: { cookie: s.cookie, 'x-rolecast-csrf': s.csrf }, payload: { role: 'lb' } });
    expect(put.statusCode).toBe(403);
    const page = await app.inject({ url: '/ui/', headers: { authorization: `Bearer ${READ}` } });
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('content="read"');
    expect((await app.inject({ url: '/ui/', headers: { authorization: 'Bearer wrong' } })).statusCode).toBe(303);
  });

  it('a cross-site login form is refused; logout ends the session', async () => {
    const x = await app.inject({ method: 'POST', url: '/ui/login', headers: { ...form, origin: 'http://evil.example' }, payload: `token=${ADMIN}` });
    expect(x.statusCode).toBe(403);
    const s = await login(ADMIN);
    const forged = await app.inject({ method: 'POST', url: '/ui/logout', headers: { ...form, cookie: s.cookie }, payload: 'csrf=wrong' });
    expect(forged.statusCode).toBe(403);
    const out = await app.inject({ method: 'POST', url: '/ui/logout', headers: { ...form, cookie: s.cookie }, payload: `csrf=${encodeURIComponent(s.csrf)}` });
    expect(out.statusCode).toBe(303);
    expect((await app.inject({ url: '/api/fleet', headers: { cookie: s.cookie } })).statusCode).toBe(401);
  });

  it('sessions expire when idle and are bounded', () => {
    let now = 0;
    const s = new Sessions(1000, 2, () => now);
    const a = s.create('admin');
    now = 999;
    expect(s.get(a.id)).toBeDefined();
    now = 1500;
    expect(s.get(a.id)).toBeDefined(); // used at 999, so it lives until 1999
    now = 5000;
    expect(s.get(a.id)).toBeUndefined();
    const b = s.create('read');
    s.create('read');
    s.create('read');
    expect(s.get(b.id)).toBeUndefined(); // the oldest went first
  });
});

describe('UI routes', () => {
  const admin = { authorization: `Bearer ${ADMIN}` };

  it('GET /api/fleet lists every machine with firmware seen from the PXE vendor class', async () => {
    events.emit({ mac: '52:54:00:00:02:01', host: 'w101', stage: 'dhcp-discover', detail: 'PXEClient:Arch:00007:UNDI:003016' });
    const r = await app.inject({ url: '/api/fleet', headers: admin });
    const body = JSON.parse(r.body) as { machines: Array<{ host: string; firmware: string | null; stage: string | null }>; roles: string[] };
    expect(body.machines.length).toBe(inv.current().machines.length);
    const w101 = body.machines.find((m) => m.host === 'w101')!;
    expect(w101).toMatchObject({ firmware: 'uefi-x64', stage: 'dhcp-discover' });
    expect(body.roles).toContain('wipe');
  });

  it('GET /api/fleet gives the last power state a BMC reported, never a failed or guessed one', async () => {
    const row = async () => (JSON.parse((await app.inject({ url: '/api/fleet', headers: admin })).body) as { machines: Array<{ host: string; power: unknown }> }).machines.find((m) => m.host === 'db1')!.power;
    expect(await row()).toBeNull();
    await power.record({ host: 'db1', op: 'status', at: '2026-01-01T00:00:00.000Z', ok: true, state: 'on' });
    await power.record({ host: 'db1', op: 'status', at: '2026-01-01T00:01:00.000Z', ok: false, error: 'E_BMC_TIMEOUT' });
    expect(await row()).toEqual({ state: 'on', at: '2026-01-01T00:00:00.000Z' });
  });

  it('GET /api/fleet rows are each machine serialised whole (heads made once per snapshot, live fields per request)', async () => {
    const snap = inv.current();
    const [a, b] = snap.machines;
    await served.record(a!.macs[a!.macs.length - 1]!, { host: a!.host, role: a!.role, hash: 'deadbeef', at: '2026-01-01T00:00:00.000Z' });
    events.emit({ mac: b!.macs[0]!, host: b!.host, stage: 'http-script', detail: b!.role });
    const body = (await app.inject({ url: '/api/fleet', headers: admin })).body;
    const all = served.all();
    const ctx = { baseUrl: 'http://10.0.0.1:8080', server: '10.0.0.1', images: await loadImageView(snap, join(dir, 'images')) };
    const machines = snap.machines.map((m) => {
      const last = m.macs.map((x) => all[x]).find((x) => x !== undefined);
      const planned = last ? plannedRow(snap, ctx, m) : undefined;
      const e = events.last(m.macs[0]!);
      return {
        host: m.host, macs: m.macs, role: m.bootOnce ?? m.role, homeRole: m.role, bootOnce: m.bootOnce ?? null, ip: m.ip,
        changed: last && planned ? planned.hash !== null && last.hash !== planned.hash : null, stage: e?.stage ?? null, stageAt: e?.at ?? null,
        firmware: firmwareSeen(events.timeline(m.macs[0]!)), power: lastPower(power.list(m.host)),
      };
    });
    expect(body).toBe(JSON.stringify({ version: snap.version.slice(0, 12), roles: Object.keys(snap.roles).sort(), machines }));
    expect(machines.find((m) => m.host === a!.host)!.changed).toBe(true);
  });

  it('GET /api/machines/:host/files lists files, never secret contents or their hashes, with the YAML line', async () => {
    const r = await app.inject({ url: '/api/machines/lb1/files', headers: { authorization: `Bearer ${READ}` } });
    expect(r.statusCode).toBe(200);
    const body = JSON.parse(r.body) as { files: Array<{ path: string; secret: boolean; sha256?: string }>; source: { file: string; line: number; text: string } };
    const ka = body.files.find((f) => f.path === '/etc/keepalived/keepalived.conf')!;
    expect(ka.secret).toBe(true);
    expect(ka.sha256).toBeUndefined();
    expect(body.files.find((f) => f.path === '/etc/hostname')?.sha256).toMatch(/^[0-9a-f]{64}$/);
    const secrets = readFileSync(join(dir, 'profiles/secrets.yaml'), 'utf8').match(/:\s*"?([^"\n]{6,})"?\s*$/gm) ?? [];
    for (const s of secrets) expect(r.body).not.toContain(s.replace(/^:\s*"?|"?\s*$/g, ''));
    expect(body.source.file).toBe('machines.yaml');
    expect(body.source.text).toMatch(/host: lb1/);
  });

  it('boot-once: a destructive target needs confirm_wipe and the host name typed', async () => {
    const once = (host: string, payload: object) => app.inject({ method: 'POST', url: `/api/machines/${host}/boot-once`, headers: admin, payload });
    const r1 = await once('w101', { target: 'wipe', confirm: 'w101' });
    expect([r1.statusCode, JSON.parse(r1.body).code]).toEqual([422, 'E_NO_CONFIRM_WIPE']);
    // w104 opts in to destructive targets, as the wipe e2e does.
    const file = join(dir, 'profiles/machines.yaml');
    writeFileSync(file, readFileSync(file, 'utf8').replace(/(\{ host: w104,[^\n]*?) \}/, '$1, confirm_wipe: true }'));
    await inv.reload();
    const wiper = inv.current().byHost.get('w104');
    expect(wiper?.confirmWipe).toBe(true);
    const r2 = await once(wiper!.host, { target: 'wipe' });
    expect(JSON.parse(r2.body).code).toBe('E_CONFIRM');
    const r3 = await once(wiper!.host, { target: 'wipe', confirm: wiper!.host });
    expect(r3.statusCode, r3.body).toBe(200);
    expect(inv.current().byHost.get(wiper!.host)?.bootOnce).toBe('wipe');
    expect((await once(wiper!.host, { target: null })).statusCode).toBe(200);
    expect(inv.current().byHost.get(wiper!.host)?.bootOnce).toBeUndefined();
    const read = await app.inject({ method: 'POST', url: '/api/machines/w101/boot-once', headers: { authorization: `Bearer ${READ}` }, payload: { target: 'memtest' } });
    expect(read.statusCode).toBe(403);
  });

  it('GET /api/profiles/status reports a refused reload with file:line:col', async () => {
    const file = join(dir, 'profiles/machines.yaml');
    const good = readFileSync(file, 'utf8');
    writeFileSync(file, good.replace('role: db', 'role: nosuchrole'));
    await inv.reload();
    const r = JSON.parse((await app.inject({ url: '/api/profiles/status', headers: admin })).body) as { lastReload: { ok: boolean; issues: string[] } };
    expect(r.lastReload.ok).toBe(false);
    expect(r.lastReload.issues[0]).toMatch(/^machines\.yaml:\d+:\d+: machines\[\d+\]\.role: unknown role "nosuchrole"/);
    writeFileSync(file, good);
    await inv.reload();
    const ok = JSON.parse((await app.inject({ url: '/api/profiles/status', headers: admin })).body) as { lastReload: { ok: boolean } };
    expect(ok.lastReload.ok).toBe(true);
  });
});
