/**
 * `rolecast serve` (the composition root, startServer) on the postgres backend starts while the database
 * is down (issue 13): from the copy of the last profile version it keeps in the data directory, degraded
 * — reserved machines get their boot script, pool allocations are refused, /healthz and the log say so —
 * and recovers by itself when a real PostgreSQL 15 comes up: the queued events and grants are written,
 * the database's profiles are in use, and a new version reaches it by NOTIFY.
 */
import { afterAll, expect, it } from 'vitest';
import { cpSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import pg from 'pg';
import { describePg, PgCluster } from '../../helpers/pg.js';
import { waitFor } from '../../helpers/netns.js';
import { placeholderImages } from '../../helpers/images.js';
import { startServer, type Running } from '../../../src/main.js';
import { defaultConfig, type ServerConfig } from '../../../src/config.js';
import { createLogger, silentLogger } from '../../../src/log.js';
import { MACHINES_FILE } from '../../../src/inventory/load.js';
import { profileCachePath } from '../../../src/state/pg/site.js';
import { openPgState } from '../../../src/state/pg/index.js';

const W106 = '52:54:00:00:02:06';
const inAnHour = () => new Date(Date.now() + 3600_000).toISOString();
const setRole = (host: string, role: string) => (t: string) => t.replace(new RegExp(`(host: ${host},[^}]*role: )\\w+`), `$1${role}`);

function capture(): { logger: ReturnType<typeof createLogger>; messages: () => string[] } {
  const chunks: string[] = [];
  const sink = new Writable({ write(c: Buffer, _e, cb) { chunks.push(c.toString()); cb(); } });
  return { logger: createLogger('info', sink), messages: () => chunks.join('').split('\n').filter(Boolean).map((l) => String((JSON.parse(l) as { msg?: unknown }).msg)) };
}

describePg('a server on PostgreSQL started while the database is down', () => {
  let db: PgCluster | undefined;
  let running: Running | undefined;
  const dir = mkdtempSync(join(tmpdir(), 'rolecast-pgdown-'));
  afterAll(async () => {
    await running?.close();
    await db?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves reserved machines from its copy of the profiles, refuses pool grants, says so, and recovers by itself', async () => {
    db = await PgCluster.start();
    cpSync(resolve(import.meta.dirname, '../../fixtures/profiles'), join(dir, 'profiles'), { recursive: true });
    const base = defaultConfig();
    const cfg: ServerConfig = {
      ...base, profilesDir: join(dir, 'profiles'), dataDir: join(dir, 'data'), imagesDir: join(dir, 'images'), address: '127.0.0.1',
      http: { ...base.http, host: '127.0.0.1', port: 0 }, tftp: { ...base.tftp, enabled: false }, dhcp: { ...base.dhcp, mode: 'off' },
      state: { backend: 'postgres', url: db.url() },
    };
    await placeholderImages(cfg.profilesDir, cfg.imagesDir);

    // A first start with the database up: the directory becomes version 1; an edit makes version 2.
    running = await startServer(cfg, silentLogger());
    await running.state.profiles.edit(MACHINES_FILE, setRole('w106', 'lb'), { who: 'test' });
    await waitFor(() => running!.store.current().byHost.get('w106')?.role === 'lb', 15_000);
    const cache = profileCachePath(cfg.dataDir);
    expect((JSON.parse(readFileSync(cache, 'utf8')) as { version: number }).version).toBe(2);
    expect(statSync(cache).mode & 0o777).toBe(0o600); // it holds secrets.yaml
    // History of w106 in the database (written by close at the latest).
    running.state.events.emit({ mac: W106, host: 'w106', stage: 'dhcp-ack', address: '10.0.0.106', at: new Date(Date.now() - 60_000).toISOString() });
    await running.close();
    running = undefined;

    await db.pgStopAsync();
    // Nothing to start from: a clear refusal.
    const none = await startServer({ ...cfg, dataDir: join(dir, 'empty') }, silentLogger()).then(() => undefined, (e: unknown) => e);
    expect(none).toMatchObject({ code: 'E_STATE_UNAVAILABLE' });
    expect(String((none as Error).message)).toMatch(/profiles\.cache\.json holds no copy/);

    const log = capture();
    running = await startServer(cfg, log.logger);
    const url = `http://127.0.0.1:${running.httpPort}`;
    expect(log.messages()).toEqual(expect.arrayContaining([expect.stringMatching(/unreachable at start: starting degraded/), expect.stringMatching(/serving profiles version 2 from the data directory's copy/)]));
    const health = await (await fetch(`${url}/healthz`)).json() as { status: string; state: { backend: string; up: boolean } };
    expect(health).toMatchObject({ status: 'degraded', state: { backend: 'postgres', up: false } });
    expect(await (await fetch(`${url}/boot/${W106}.ipxe?arch=0`)).text()).toMatch(/w106 as lb\n/);
    const { leases } = running.state;
    expect(leases.canAllocate()).toBe(false);
    expect(await leases.commit({ mac: '52:54:00:ee:01:01', ip: '10.0.0.200', state: 'offered', expiresAt: inAnHour() }, { network: 'lab' })).toBe(false);
    expect(await leases.commit({ mac: W106, ip: '10.0.0.106', state: 'bound', expiresAt: inAnHour(), host: 'w106' }, { network: 'lab', reserved: true })).toBe(true);
    await expect(running.state.profiles.edit(MACHINES_FILE, (t) => t)).rejects.toMatchObject({ code: 'E_STATE_UNAVAILABLE' });

    await db.pgStartAsync();
    await waitFor(async () => ((await (await fetch(`${url}/healthz`)).json()) as { state: { up: boolean } }).state.up, 15_000);
    expect(leases.canAllocate()).toBe(true);
    expect(running.store.current().profilesDir).toBe('postgres profiles version 2');
    const sql = new pg.Client({ connectionString: db.url() });
    await sql.connect();
    try {
      // The boot events of the outage (the script above) and the reserved grant reached the table.
      await waitFor(async () => Number((await sql.query('SELECT count(*) AS n FROM events WHERE mac = $1', [W106])).rows[0].n) > 0, 15_000);
      await waitFor(async () => (await sql.query('SELECT state FROM leases WHERE mac = $1', [W106])).rows[0]?.state === 'bound', 15_000);
    } finally {
      await sql.end();
    }
    // The history loaded once the database came up sorts before the outage's own events (the boot
    // script served above), not after them.
    await waitFor(() => running!.state.events.timeline(W106).some((e) => e.stage === 'dhcp-ack'), 15_000);
    const stages = running.state.events.timeline(W106).map((e) => e.stage);
    expect(stages[0]).toBe('dhcp-ack');
    expect(stages.length).toBeGreaterThan(1);
    // And it listens: a version made elsewhere reaches it.
    const other = await openPgState(db.url(), silentLogger(), { parts: ['profiles'] });
    try {
      await other.profiles.edit(MACHINES_FILE, setRole('w106', 'db'), { who: 'elsewhere' });
    } finally {
      await other.close();
    }
    await waitFor(() => running!.store.current().byHost.get('w106')?.role === 'db', 15_000);
    expect(await (await fetch(`${url}/boot/${W106}.ipxe?arch=0`)).text()).toMatch(/w106 as db\n/);
  }, 120_000);
});
