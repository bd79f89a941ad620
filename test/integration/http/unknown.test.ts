/**
 * An unknown MAC under `unknown: { policy: boot, target: rescue }` gets every stage of its boot from the
 * plan: its script, and the rescue role's rootfs (base image + identity files) and files over HTTP —
 * not a 404 after the kernel. Under `policy: ignore` it gets nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../../src/http/app.js';
import { InventoryStore } from '../../../src/inventory/watch.js';
import { defaultConfig } from '../../../src/config.js';
import { silentLogger } from '../../../src/log.js';
import { openFileState } from '../../../src/state/file/index.js';
import type { State } from '../../../src/state/types.js';
import type { Inventory } from '../../../src/inventory/types.js';
import { writeFixtureProfiles } from '../../helpers/profiles.js';

const dir = mkdtempSync(join(tmpdir(), 'rolecast-unknown-'));
const UNKNOWN = '52:54:00:ee:00:01';
let app: FastifyInstance;
let inv: InventoryStore;
let state: State;
let override: Inventory | undefined;

beforeAll(async () => {
  const profiles = join(dir, 'profiles');
  writeFixtureProfiles(profiles, { unknown: 'rescue' });
  const src = join(dir, 'base');
  mkdirSync(join(src, 'etc'), { recursive: true });
  writeFileSync(join(src, 'etc/motd'), 'rescue base\n');
  mkdirSync(join(dir, 'images/build/rootfs'), { recursive: true });
  expect(spawnSync('tar', ['-C', src, '-cf', join(dir, 'images/build/rootfs/small.tar'), '.']).status).toBe(0);
  writeFileSync(join(dir, 'images/build/vmlinuz'), 'kernel');
  writeFileSync(join(dir, 'images/build/initrd.img'), 'initrd');
  const cfg = { ...defaultConfig(), profilesDir: profiles, dataDir: join(dir, 'data'), imagesDir: join(dir, 'images'), address: '10.0.0.1' };
  inv = await InventoryStore.open(profiles, silentLogger());
  state = await openFileState(cfg.dataDir, profiles, silentLogger());
  app = await buildApp({ getInventory: () => override ?? inv.current(), config: cfg, logger: silentLogger(), state });
});
afterAll(async () => { await app.close(); await state.close(); inv.close(); rmSync(dir, { recursive: true, force: true }); });

describe('an unknown MAC under the unknown-machine policy', () => {
  it('boots the policy target: script, then the rescue rootfs with its identity files over HTTP', async () => {
    const script = await app.inject(`/boot/${UNKNOWN}.ipxe`);
    expect(script.statusCode).toBe(200);
    expect(script.body).toContain(`unknown ${UNKNOWN} as rescue`);
    expect(script.body).toContain('rolecast.action=rescue');
    const r = await app.inject({ url: `/rootfs/${UNKNOWN}.tar`, remoteAddress: '10.0.200.7' });
    expect(r.statusCode).toBe(200);
    const tarFile = join(dir, 'got.tar');
    writeFileSync(tarFile, r.rawPayload);
    const out = join(dir, 'x');
    mkdirSync(out);
    expect(spawnSync('tar', ['-C', out, '-xf', tarFile]).status).toBe(0);
    expect(readFileSync(join(out, 'etc/motd'), 'utf8')).toBe('rescue base\n');
    expect(readFileSync(join(out, 'etc/hostname'), 'utf8')).toBe('unknown-525400ee0001\n');
    expect(JSON.parse(readFileSync(join(out, 'etc/rolecast/machine.json'), 'utf8'))).toMatchObject({ mac: UNKNOWN, role: 'rescue', unknown: true, host: null });
    expect((await app.inject(`/files/${UNKNOWN}/etc/hostname`)).body).toBe('unknown-525400ee0001\n');
    // The boot shows in its timeline, under its MAC.
    expect(state.events.timeline(UNKNOWN).map((e) => e.stage)).toEqual(expect.arrayContaining(['http-script', 'http-rootfs']));
  });

  it('gets nothing under policy ignore (404 with the reason)', async () => {
    const cur = inv.current();
    override = { ...cur, site: { ...cur.site, unknown: { policy: 'ignore' } } };
    try {
      const r = await app.inject(`/rootfs/${UNKNOWN}.tar`);
      expect(r.statusCode).toBe(404);
      expect(r.json()).toMatchObject({ code: 'E_UNKNOWN_MACHINE' });
      expect(r.json().message).toContain('unknown-machine policy: ignore');
      expect((await app.inject(`/boot/${UNKNOWN}.ipxe`)).statusCode).toBe(404);
    } finally {
      override = undefined;
    }
  });
});
