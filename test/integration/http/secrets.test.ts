/**
 * Nothing derived from a secret reaches anyone but its owner (issue 16 item 3). The attack: with
 * everything in lb1's files known but the VRRP password, each guess gives lb1's files, their sha256
 * and so the content hash; /api/machines published exactly that, so 8 guesses found the password.
 * Here the attacker's best case — the right guess — must match nothing the API or the event log shows.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../../src/http/app.js';
import { openFileState } from '../../../src/state/file/index.js';
import { InventoryStore } from '../../../src/inventory/watch.js';
import { defaultConfig, baseUrlOf } from '../../../src/config.js';
import { silentLogger } from '../../../src/log.js';
import { resolveMachine } from '../../../src/inventory/resolve.js';
import { machineContentHash, renderMachineFiles } from '../../../src/render/index.js';
import { createHash } from 'node:crypto';

const ROOT = resolve(import.meta.dirname, '../../..');
const dir = mkdtempSync(join(tmpdir(), 'rolecast-secrets-'));
const LB1 = '52:54:00:00:01:01';
const auth = { authorization: 'Bearer secrets-read' };
let app: FastifyInstance;
let inv: InventoryStore;
let ctx: { baseUrl: string; server: string };

beforeAll(async () => {
  cpSync(join(ROOT, 'test/fixtures/profiles'), join(dir, 'profiles'), { recursive: true });
  mkdirSync(join(dir, 'base/etc'), { recursive: true });
  writeFileSync(join(dir, 'base/etc/motd'), 'base\n');
  mkdirSync(join(dir, 'images/build/rootfs'), { recursive: true });
  spawnSync('tar', ['-C', join(dir, 'base'), '-cf', join(dir, 'images/build/rootfs/lb.tar'), '.']);
  const cfg = { ...defaultConfig(), profilesDir: join(dir, 'profiles'), dataDir: join(dir, 'data'), imagesDir: join(dir, 'images'), address: '10.0.0.1' };
  cfg.http = { ...cfg.http, tokens: { read: ['secrets-read'] } };
  ctx = { baseUrl: baseUrlOf(cfg), server: cfg.address };
  inv = await InventoryStore.open(cfg.profilesDir, silentLogger());
  const state = await openFileState(cfg.dataDir, cfg.profilesDir, silentLogger());
  app = await buildApp({ getInventory: () => inv.current(), config: cfg, logger: silentLogger(), state });
});
afterAll(async () => { await app.close(); inv.close(); rmSync(dir, { recursive: true, force: true }); });

describe('no hash oracle for secrets', () => {
  it('the API and the event log never show a hash an attacker could recompute from a right guess', async () => {
    const cur = inv.current();
    const files = renderMachineFiles(resolveMachine(cur, cur.byHost.get('lb1')!), cur, ctx);
    expect(files.some((f) => f.secret)).toBe(true);
    // What the attacker computes for the right password: the plain content hash and each secret file's sha256.
    const guesses = [machineContentHash(files), ...files.filter((f) => f.secret).map((f) => createHash('sha256').update(f.content).digest('hex'))];
    // Make lb1's rootfs go out once (from its own address), so the event log holds a rootfs event.
    await app.inject({ url: `/files/${LB1}/etc/hostname`, remoteAddress: '10.0.0.11' });
    expect((await app.inject({ url: `/rootfs/${LB1}.tar`, remoteAddress: '10.0.0.11' })).statusCode).toBe(200);
    const published: string[] = [];
    for (const url of ['/api/machines', '/api/machines/lb1', `/api/machines/${LB1}/events`, '/api/fleet', '/api/machines/lb1/files']) {
      const r = await app.inject({ url, headers: auth });
      expect(r.statusCode, url).toBe(200);
      published.push(r.body);
    }
    const all = published.join('\n');
    expect(all).toMatch(/"stage":"http-rootfs","address":"10\.0\.0\.11","detail":"52:54:00:00:01:01\.tar [0-9a-f]{12}"/);
    for (const g of guesses) expect(all, `${g} at ${all.indexOf(g.slice(0, 12))}: ${all.slice(Math.max(0, all.indexOf(g.slice(0, 12)) - 200), all.indexOf(g.slice(0, 12)) + 20)}`).not.toContain(g.slice(0, 12));
    // The files view lists a secret file by path and mode only: its size (a password's length) and a
    // hash of it derive from the secret (issue 16). Regression: sizes were published.
    const view = (await app.inject({ url: '/api/machines/lb1/files', headers: auth })).json() as { files: Array<Record<string, unknown>> };
    const secretRows = view.files.filter((f) => f.secret === true);
    expect(secretRows.map((f) => f.path)).toContain('/etc/keepalived/keepalived.conf');
    for (const f of secretRows) expect(Object.keys(f).sort(), String(f.path)).toEqual(['mode', 'path', 'secret']);
    expect(view.files.find((f) => f.path === '/etc/hostname')).toMatchObject({ size: 4, sha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
    // The published hash is still a stable identity of the files (same snapshot, same value).
    const rows = (await app.inject({ url: '/api/machines', headers: auth })).json() as Array<{ host: string; hash: string }>;
    const again = (await app.inject({ url: '/api/machines', headers: auth })).json() as Array<{ host: string; hash: string }>;
    expect(rows.find((r) => r.host === 'lb1')?.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(rows).toEqual(again);
  });
});
