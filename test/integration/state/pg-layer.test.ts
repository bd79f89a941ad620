/**
 * The state layer on a real PostgreSQL 15 (started for this file), beyond the stores' own behaviour
 * (pg-stores.test.ts): the shared timelines stay bounded whatever MACs arrive; records bigger than a
 * NOTIFY payload (8000 bytes) still reach the other server; the CLI opens the same state through
 * openState (a second process's events and power actions reach a running server, `rolecast events`
 * reads the database); the machine view's YAML line comes from the database's profiles.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describePg, PgCluster } from '../../helpers/pg.js';
import { waitFor } from '../../helpers/netns.js';
import { rolecastHere as cli } from '../cli/helpers.js';
import { openPgState, type PgState } from '../../../src/state/pg/index.js';
import { openPgSite } from '../../../src/state/pg/site.js';
import { openState } from '../../../src/state/open.js';
import { buildApp } from '../../../src/http/app.js';
import { defaultConfig, type ServerConfig } from '../../../src/config.js';
import { MACHINES_FILE } from '../../../src/inventory/load.js';
import { silentLogger } from '../../../src/log.js';
import type { BootEvent } from '../../../src/events/types.js';

const ROOT = resolve(import.meta.dirname, '../../..');
const run = promisify(execFile);
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const heap = () => { gc(); gc(); return process.memoryUsage().heapUsed; };
const fake = (i: number) => `02:${[(i >> 24) & 255, (i >> 16) & 255, (i >> 8) & 255, i & 255, 7].map((b) => b.toString(16).padStart(2, '0')).join(':')}`;

describePg('PostgreSQL state layer: bounds, payloads, the CLI and the API through openState', () => {
  let db: PgCluster;
  let a: PgState;
  let b: PgState;
  let dir: string;
  let cfg: ServerConfig;
  let cfgFile: string;

  beforeAll(async () => {
    db = await PgCluster.start();
    dir = mkdtempSync(join(tmpdir(), 'rolecast-pglayer-'));
    cpSync(join(ROOT, 'test/fixtures/profiles'), join(dir, 'profiles'), { recursive: true });
    cfg = { ...defaultConfig(), profilesDir: join(dir, 'profiles'), dataDir: join(dir, 'data'), imagesDir: join(dir, 'images'), address: '10.0.0.1', state: { backend: 'postgres', url: db.url() } };
    cfgFile = join(dir, 'rolecast.yaml');
    writeFileSync(cfgFile, `profilesDir: profiles\ndataDir: data\nimagesDir: images\nstate:\n  backend: postgres\n  url: ${JSON.stringify(db.url())}\n`);
    [a, b] = await Promise.all([openPgState(db.url(), silentLogger()), openPgState(db.url(), silentLogger())]);
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await db?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('10^5 distinct fake MACs (a DHCP discover and a forged phone-home each) add <= 50 MB of timelines; known timelines stay', async () => {
    const KNOWN = '52:54:00:00:02:01';
    a.events.emit({ mac: KNOWN, host: 'w101', stage: 'booted', detail: 'before the flood' });
    await waitFor(() => a.events.backlog === 0, 10_000);
    const before = heap();
    for (let i = 0; i < 100_000; i++) {
      const mac = fake(i);
      a.events.emit({ mac, stage: 'dhcp-discover', detail: 'PXEClient:Arch:00000:UNDI:002001', address: '0.0.0.0' });
      a.events.emit({ mac, stage: 'booted', detail: `forged ${'x'.repeat(100)}`, address: '10.0.0.66' });
      if (i % 5000 === 0) await new Promise((r) => setImmediate(r));
    }
    // Written, and every notification of them read back (and skipped: they are ours) before measuring.
    await waitFor(() => a.events.backlog === 0, 120_000, 200);
    await waitFor(() => b.events.last(fake(99_999))?.stage === 'booted', 60_000, 200);
    const added = heap() - before;
    console.log(`pg event log: 10^5 fake MACs added ${(added / 2 ** 20).toFixed(1)} MB of heap`);
    expect(added).toBeLessThanOrEqual(50 * 2 ** 20);
    for (const s of [a, b]) {
      expect(s.events.timeline(KNOWN).map((e) => e.detail)).toEqual(['before the flood']);
      expect(s.events.timeline(fake(99_999))).toHaveLength(2);
      expect(s.events.timeline(fake(0))).toHaveLength(0); // least recently heard: dropped
    }
    // The table keeps everything; only memory is bounded.
    expect((await a.events.history(fake(0))).map((e) => e.stage)).toEqual(['dhcp-discover', 'booted']);
  }, 300_000);

  it('records bigger than a NOTIFY payload reach the other server: a 20 kB discovered record, a 9 kB BMC error, a 9 kB event detail', async () => {
    const facts = { disks: Array.from({ length: 200 }, (_, i) => ({ name: `sd${i}`, serial: `S${'9'.repeat(80)}${i}` })) };
    const rec = { mac: '52:54:00:dd:10:01', macs: ['52:54:00:dd:10:01'], firstSeen: 't', lastSeen: 't', state: 'waiting' as const, facts };
    expect(JSON.stringify(rec).length).toBeGreaterThan(8000);
    await a.discovered.put(rec);
    const error = `E_BMC_PROTOCOL: ${'y'.repeat(9000)}`;
    await a.power.record({ host: 'big1', op: 'status', at: new Date().toISOString(), ok: false, error });
    a.events.emit({ mac: '52:54:00:dd:10:02', host: 'big2', stage: 'failed', detail: 'z'.repeat(9000) });
    await waitFor(() => b.discovered.get(rec.mac) && b.power.list('big1').length === 1 && b.events.last('52:54:00:dd:10:02'), 5000);
    expect(b.discovered.get(rec.mac)).toEqual(rec);
    expect(b.power.list('big1')[0]!.error).toBe(error);
    expect(b.events.last('52:54:00:dd:10:02')!.detail).toHaveLength(9000);
    expect((await b.events.history('52:54:00:dd:10:02'))[0]!.detail).toHaveLength(9000);
    await b.discovered.remove(rec.mac);
    await waitFor(() => a.discovered.get(rec.mac) === undefined, 5000);
  });

  it("the CLI opens the same state: another process's events and power actions reach a running server; rolecast events reads the database", async () => {
    const seen: BootEvent[] = [];
    const off = a.events.subscribe((e) => seen.push(e));
    const source = { dataDir: cfg.dataDir, profilesDir: cfg.profilesDir, state: cfg.state };
    const r = await run('node', ['--import', 'tsx', join(ROOT, 'test/helpers/state-writer.ts'), JSON.stringify(source), '300'], { cwd: ROOT });
    expect(r.stdout.trim()).toBe('done 300');
    await waitFor(() => seen.filter((e) => e.detail?.startsWith('cli ')).length === 300 && a.power.list('cli-0').length === 3, 5000);
    off();
    expect(a.events.timeline('52:54:00:77:00:03').map((e) => e.detail)).toEqual(Array.from({ length: 15 }, (_, k) => `cli ${3 + 20 * k}`));
    const ev = await cli(['events', '52:54:00:77:00:03', '--config', cfgFile, '--json']);
    expect(ev.code).toBe(0);
    expect((JSON.parse(ev.stdout) as BootEvent[]).map((e) => e.detail)).toEqual(Array.from({ length: 15 }, (_, k) => `cli ${3 + 20 * k}`));
    expect((await cli(['events', '52:54:00:77:00:99', '--config', cfgFile])).stdout).toMatch('no boot events for 52:54:00:77:00:99 in the state database');
    // And the data directory was not used for any of it.
    const file = await openState({ ...source, state: { backend: 'file' } }, { parts: ['events'], follow: false });
    expect(await file.events.history('52:54:00:77:00:03')).toEqual([]);
    await file.close();
  }, 60_000);

  it('a reserved offer and the renewal of a reserved bound lease are answered at once; the table follows; a first bound lease waits and is checked', async () => {
    const exp = (h: number) => new Date(Date.now() + h * 3600_000).toISOString();
    const mac = '52:54:00:dd:20:01';
    const rows = async () => (await a.link.pool.query<{ state: string; expires_at: Date }>('SELECT state, expires_at FROM leases WHERE mac = $1', [mac])).rows;
    expect(await a.leases.commit({ mac, ip: '10.9.20.1', state: 'offered', expiresAt: exp(1) }, { network: 'lab', reserved: true })).toBe(true);
    await waitFor(async () => (await rows())[0]?.state === 'offered', 5000);
    expect(await a.leases.commit({ mac, ip: '10.9.20.1', state: 'bound', expiresAt: exp(1) }, { network: 'lab', reserved: true })).toBe(true);
    expect((await rows())[0]?.state).toBe('bound'); // the first bound lease was durable before it resolved
    expect(await a.leases.commit({ mac, ip: '10.9.20.1', state: 'bound', expiresAt: exp(5) }, { network: 'lab', reserved: true })).toBe(true);
    await waitFor(async () => ((await rows())[0]?.expires_at.getTime() ?? 0) > Date.now() + 4 * 3600_000, 5000);
    // Another MAC holding the "reserved" address (a misconfigured transition): the offer goes out, its bound lease is refused.
    const other = '52:54:00:dd:20:02';
    expect(await b.leases.commit({ mac: other, ip: '10.9.20.1', state: 'offered', expiresAt: exp(1) }, { network: 'lab', reserved: true })).toBe(true);
    expect(await b.leases.commit({ mac: other, ip: '10.9.20.1', state: 'bound', expiresAt: exp(1) }, { network: 'lab', reserved: true })).toBe(false);
  });

  it("GET /api/machines/<host>/files shows the machine's YAML line from the database's profiles", async () => {
    const site = await openPgSite(cfg, silentLogger());
    try {
      await site.state.profiles.edit(MACHINES_FILE, (t) => t.replace(/^(.*host: lb1,.*)$/m, '$1  # edited in the database'), { who: 'test' });
      await site.store.reload();
      const app = await buildApp({ getInventory: () => site.store.current(), config: { ...cfg, http: { ...cfg.http, tokens: { admin: ['adm1n-t0ken-xyz'], read: [] } } }, logger: silentLogger(), state: site.state });
      const res = await app.inject({ url: '/api/machines/lb1/files', headers: { authorization: 'Bearer adm1n-t0ken-xyz' } });
      await app.close();
      expect(res.statusCode).toBe(200);
      const body = JSON.parse(res.body) as { source: { file: string; line: number; text: string | null } };
      expect(body.source.file).toBe(MACHINES_FILE);
      expect(body.source.text).toMatch(/host: lb1,.*# edited in the database/);
    } finally {
      site.store.close();
      await site.state.close();
    }
  }, 60_000);
});
