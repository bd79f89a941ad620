/**
 * Profile edits through the state layer: many at once lose none, a conflicting one is refused and told
 * so, and the API, boot-once clearing and the CLI's editor all take the same path.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../../src/http/app.js';
import { InventoryStore } from '../../../src/inventory/watch.js';
import { defaultConfig } from '../../../src/config.js';
import { silentLogger } from '../../../src/log.js';
import { openFileState } from '../../../src/state/file/index.js';
import { FileProfileEditor, contentHash } from '../../../src/state/file/profiles.js';
import { assignRole, setBootOnce } from '../../../src/inventory/edit.js';
import type { State } from '../../../src/state/types.js';
import { fixtureHost, writeFixtureProfiles } from '../../helpers/profiles.js';

const dir = mkdtempSync(join(tmpdir(), 'rolecast-edits-'));
const profiles = join(dir, 'profiles');
const TOKEN = 'admin-token';
let app: FastifyInstance;
let inv: InventoryStore;
let state: State;

beforeAll(async () => {
  writeFixtureProfiles(profiles, { machines: 80 });
  const cfg = { ...defaultConfig(), profilesDir: profiles, dataDir: join(dir, 'data'), imagesDir: join(dir, 'images'), address: '10.0.0.1' };
  cfg.http = { ...cfg.http, token: TOKEN };
  inv = await InventoryStore.open(profiles, silentLogger());
  state = await openFileState(cfg.dataDir, profiles, silentLogger());
  app = await buildApp({ getInventory: () => inv.current(), config: cfg, logger: silentLogger(), state, reload: () => inv.reload() });
});
afterAll(async () => { await app.close(); await state.close(); inv.close(); rmSync(dir, { recursive: true, force: true }); });

const put = (host: string, body: object) => app.inject({ method: 'PUT', url: `/api/machines/${host}/role`, headers: { authorization: `Bearer ${TOKEN}` }, payload: body });
const lineOf = (host: string) => readFileSync(join(profiles, 'machines.yaml'), 'utf8').split('\n').find((l) => l.includes(`host: ${host},`)) ?? '';

describe('profile edits', () => {
  it('50 concurrent role changes for 50 hosts, plus boot-once set and cleared on 30 others at the same time: every edit is in the YAML', async () => {
    // boot_once on w051..w080 first, then clear them (as a served boot-once does) while the 50 PUTs run.
    for (let i = 50; i < 80; i++) await setBootOnce(state.profiles, fixtureHost(i), 'rescue');
    const puts = Array.from({ length: 50 }, (_, i) => put(fixtureHost(i), { role: 'db' }));
    const clears = Array.from({ length: 30 }, (_, i) => setBootOnce(state.profiles, fixtureHost(50 + i), null, { ifCurrent: 'rescue' }));
    const answers = await Promise.all(puts);
    await Promise.all(clears);
    expect(answers.map((a) => a.statusCode)).toEqual(Array(50).fill(200));
    for (let i = 0; i < 50; i++) expect(lineOf(fixtureHost(i)), fixtureHost(i)).toContain('role: db');
    for (let i = 50; i < 80; i++) {
      expect(lineOf(fixtureHost(i)), fixtureHost(i)).toContain('role: web');
      expect(lineOf(fixtureHost(i)), fixtureHost(i)).not.toContain('boot_once');
    }
    await inv.reload();
    expect(inv.current().machines.filter((m) => m.role === 'db')).toHaveLength(50);
  });

  it('two conflicting edits of the same line: one wins, the other is told (409 E_CONFLICT) and changes nothing', async () => {
    const host = fixtureHost(60);
    const [a, b] = await Promise.all([put(host, { role: 'db', from: 'web' }), put(host, { role: 'rescue', from: 'web' })]);
    const codes = [a.statusCode, b.statusCode].sort();
    expect(codes).toEqual([200, 409]);
    const loser = a.statusCode === 409 ? a : b;
    const winner = a.statusCode === 200 ? a : b;
    expect(loser.json()).toMatchObject({ code: 'E_CONFLICT' });
    expect(loser.json().message).toMatch(new RegExp(`${host}: role is \\w+ now, not web`));
    expect(lineOf(host)).toContain(`role: ${(winner.json() as { role: string }).role}`);
  });

  it('a boot-once clear after the target was changed meanwhile leaves the new target alone', async () => {
    const host = fixtureHost(61);
    await setBootOnce(state.profiles, host, 'rescue');
    await setBootOnce(state.profiles, host, 'db'); // the operator sets another target before the clear runs
    await expect(setBootOnce(state.profiles, host, null, { ifCurrent: 'rescue' })).rejects.toMatchObject({ code: 'E_CONFLICT' });
    expect(lineOf(host)).toContain('boot_once: db');
    await setBootOnce(state.profiles, host, null);
  });

  it('compare-and-swap on the file: an edit based on an old hash is refused', async () => {
    const editor = new FileProfileEditor(profiles);
    const { hash } = await editor.read('machines.yaml');
    await assignRole(editor, fixtureHost(62), 'db', { expectHash: hash });
    expect(contentHash(readFileSync(join(profiles, 'machines.yaml'), 'utf8'))).not.toBe(hash);
    await expect(assignRole(editor, fixtureHost(63), 'db', { expectHash: hash })).rejects.toMatchObject({ code: 'E_CONFLICT' });
    expect(lineOf(fixtureHost(63))).toContain('role: web');
  });

  it('edits from another process (the CLI beside the server) queue behind the lock file instead of overwriting', async () => {
    // A second process assigns 10 hosts while this one assigns 10 others: all 20 land.
    const script = `
      import { FileProfileEditor } from ${JSON.stringify(new URL('../../../src/state/file/profiles.ts', import.meta.url).pathname)};
      import { assignRole } from ${JSON.stringify(new URL('../../../src/inventory/edit.ts', import.meta.url).pathname)};
      const e = new FileProfileEditor(${JSON.stringify(profiles)});
      for (let i = 0; i < 10; i++) await assignRole(e, 'w0' + (10 + i), 'rescue');`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    const mine = (async () => { for (let i = 0; i < 10; i++) await assignRole(state.profiles, fixtureHost(30 + i), 'rescue'); })();
    const code = await new Promise<number | null>((r) => child.on('exit', r));
    await mine;
    expect(code, err).toBe(0);
    for (let i = 0; i < 10; i++) {
      expect(lineOf(`w0${10 + i}`)).toContain('role: rescue');
      expect(lineOf(fixtureHost(30 + i))).toContain('role: rescue');
    }
  });
});
