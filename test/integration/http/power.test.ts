/**
 * POST/GET /api/machines/<host>/power on the real app, against the Redfish test emulator on 127.0.0.1:
 * admin token to act, read token to read, the BMC's state never guessed (a silent BMC is a 504 with its
 * message), the action recorded in the machine's timeline and the power log, no password in any answer.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../../src/http/app.js';
import { openFileState } from '../../../src/state/file/index.js';
import { InventoryStore } from '../../../src/inventory/watch.js';
import { defaultConfig, type ServerConfig } from '../../../src/config.js';
import { silentLogger } from '../../../src/log.js';
import { PowerService } from '../../../src/bmc/service.js';
import { ConsoleLogStore } from '../../../src/bmc/consolelog.js';
import type { State } from '../../../src/state/types.js';
import { MemoryPower, RedfishEmu } from '../../helpers/redfish-emu.js';

const ROOT = resolve(import.meta.dirname, '../../..');
const dir = mkdtempSync(join(tmpdir(), 'rolecast-power-api-'));
const ADMIN = 'admin-token-p';
const READ = 'read-token-p';
const PASSWORD = 'rf-pa55-w101';
const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

let inv: InventoryStore;
let app: FastifyInstance;
let state: State;
let consoles: ConsoleLogStore;
const bmc = new RedfishEmu({ password: PASSWORD, backend: new MemoryPower('Off') });
const silent = new RedfishEmu({ silent: true });

beforeAll(async () => {
  await bmc.listen();
  await silent.listen();
  cpSync(join(ROOT, 'test/fixtures/profiles'), join(dir, 'profiles'), { recursive: true });
  const machines = join(dir, 'profiles', 'machines.yaml');
  writeFileSync(machines, readFileSync(machines, 'utf8')
    .replace(/^(\s*- \{ host: w101,.*)( \})$/m, `$1, bmc: { type: redfish, address: "127.0.0.1:${bmc.port}", user: admin, password: secret:bmc, scheme: http }$2`)
    .replace(/^(\s*- \{ host: w102,.*)( \})$/m, `$1, bmc: { type: redfish, address: "127.0.0.1:${silent.port}", user: admin, password: secret:bmc, scheme: http }$2`));
  writeFileSync(join(dir, 'profiles', 'secrets.yaml'), `${readFileSync(join(dir, 'profiles', 'secrets.yaml'), 'utf8')}bmc: ${PASSWORD}\n`);
  inv = await InventoryStore.open(join(dir, 'profiles'), silentLogger());
  const base = defaultConfig();
  const cfg: ServerConfig = { ...base, profilesDir: join(dir, 'profiles'), dataDir: join(dir, 'data'), imagesDir: join(dir, 'images'), address: '10.0.0.1', http: { ...base.http, tokens: { admin: [ADMIN], read: [READ] } } };
  state = await openFileState(cfg.dataDir, cfg.profilesDir, silentLogger());
  const power = new PowerService({ policy: { timeoutMs: 1000, attempts: 2 }, events: state.events, log: state.power });
  consoles = new ConsoleLogStore(join(cfg.dataDir, 'console'), 64 * 1024);
  app = await buildApp({ getInventory: () => inv.current(), config: cfg, logger: silentLogger(), state, power, consoles });
});
afterAll(async () => {
  await app.close();
  await state.close();
  inv.close();
  await bmc.close();
  await silent.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('power API', () => {
  it('POST needs an admin token; a read token or none is refused before any BMC call', async () => {
    const none = await app.inject({ method: 'POST', url: '/api/machines/w101/power', payload: { op: 'on' } });
    expect(none.statusCode).toBe(401);
    const read = await app.inject({ method: 'POST', url: '/api/machines/w101/power', payload: { op: 'on' }, headers: bearer(READ) });
    expect(read.statusCode).toBe(403);
    expect(bmc.requests).toEqual([]);
  });

  it('POST on with an admin token switches it on; GET reads the state and the recent actions; both land in the timeline', async () => {
    const on = await app.inject({ method: 'POST', url: '/api/machines/w101/power', payload: { op: 'on' }, headers: bearer(ADMIN) });
    expect(on.statusCode, on.body).toBe(200);
    expect(on.json()).toMatchObject({ host: 'w101', op: 'on', ok: true });
    expect(await bmc.backend.state()).toBe('On');
    const get = await app.inject({ url: '/api/machines/w101/power', headers: bearer(READ) });
    expect(get.statusCode).toBe(200);
    expect(get.json()).toMatchObject({ ok: true, state: 'on', recent: expect.arrayContaining([expect.objectContaining({ op: 'on', ok: true, by: 'api' })]) });
    const stages = state.events.timeline('52:54:00:00:02:01').map((e) => `${e.stage} ${e.detail}`);
    expect(stages).toEqual(['power-request on by api', 'power-done on ok']);
    for (const body of [on.body, get.body]) expect(body).not.toContain(PASSWORD);
    expect(bmc.sessions.size).toBe(0);
  });

  it('a BMC that never answers: 504 with E_BMC_TIMEOUT and its message, no state', async () => {
    const r = await app.inject({ method: 'POST', url: '/api/machines/w102/power', payload: { op: 'cycle' }, headers: bearer(ADMIN) });
    expect(r.statusCode).toBe(504);
    expect(r.json()).toMatchObject({ ok: false, code: 'E_BMC_TIMEOUT', error: `BMC 127.0.0.1:${silent.port} did not answer in 1 s` });
    expect(r.json().state).toBeUndefined();
  });

  it('unknown machine 404, machine without a bmc 422, unknown op 400', async () => {
    expect((await app.inject({ url: '/api/machines/nope/power', headers: bearer(READ) })).statusCode).toBe(404);
    const nobmc = await app.inject({ method: 'POST', url: '/api/machines/w103/power', payload: { op: 'status' }, headers: bearer(ADMIN) });
    expect(nobmc.statusCode).toBe(422);
    expect(nobmc.json()).toMatchObject({ code: 'E_NO_BMC' });
    expect((await app.inject({ method: 'POST', url: '/api/machines/w101/power', payload: { op: 'explode' }, headers: bearer(ADMIN) })).statusCode).toBe(400);
  });

  it('GET console: the last recorded boot as screen text (read token), raw bytes with ?raw=1, 404 when none was kept', async () => {
    expect((await app.inject({ url: '/api/machines/w101/console' })).statusCode).toBe(401);
    const none = await app.inject({ url: '/api/machines/w101/console', headers: bearer(READ) });
    expect(none.statusCode).toBe(404);
    expect(none.json()).toMatchObject({ code: 'E_NOT_FOUND' });
    expect((await app.inject({ url: '/api/machines/nope/console', headers: bearer(READ) })).statusCode).toBe(404);
    const log = await consoles.begin('w101');
    log.append(Buffer.from('\x1b[0;1miPXE\x1b[0m ok\r\nrolecast: FAILED: x\r\n'));
    const live = await app.inject({ url: '/api/machines/w101/console', headers: bearer(READ) });
    expect(live.json()).toMatchObject({ host: 'w101', recording: true, text: 'iPXE ok\nrolecast: FAILED: x\n' });
    await consoles.end('w101', log);
    const done = await app.inject({ url: '/api/machines/w101/console', headers: bearer(READ) });
    expect(done.json()).toMatchObject({ host: 'w101', recording: false, bytes: 40, text: 'iPXE ok\nrolecast: FAILED: x\n' });
    const raw = await app.inject({ url: '/api/machines/w101/console?raw=1', headers: bearer(READ) });
    expect(raw.headers['content-type']).toBe('application/octet-stream');
    expect(raw.rawPayload.toString('latin1')).toBe('\x1b[0;1miPXE\x1b[0m ok\r\nrolecast: FAILED: x\r\n');
  });
});
