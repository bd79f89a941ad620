/**
 * The PostgreSQL state backend against a real PostgreSQL 15 started for this file: two "servers"
 * (two independent links, as two rolecast processes would have) race for addresses, see each other's
 * events and records through NOTIFY, edit the profiles with compare-and-swap, and live through the
 * database being stopped and started again.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { join, resolve } from 'node:path';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import pg from 'pg';
import { describePg, PgCluster } from '../../helpers/pg.js';
import { waitFor } from '../../helpers/netns.js';
import { rolecastHere as cli } from '../cli/helpers.js';
import { openPgState, type PgState } from '../../../src/state/pg/index.js';
import { migrate } from '../../../src/state/pg/migrations.js';
import { readSources, MACHINES_FILE, parseSources } from '../../../src/inventory/load.js';
import { silentLogger } from '../../../src/log.js';
import type { BootEvent } from '../../../src/events/types.js';
import type { LeaseRecord } from '../../../src/state/types.js';
import { ProfileError } from '../../../src/errors.js';

const PROFILES = resolve(import.meta.dirname, '../../fixtures/profiles');
const inAnHour = () => new Date(Date.now() + 3600_000).toISOString();
const lease = (mac: string, ip: string, state: LeaseRecord['state'] = 'offered'): LeaseRecord => ({ mac, ip, state, expiresAt: inAnHour() });

describePg('PostgreSQL state backend', () => {
  let db: PgCluster;
  let a: PgState;
  let b: PgState;
  let sql: pg.Client;

  beforeAll(async () => {
    db = await PgCluster.start();
    // Two servers starting at once both migrate: one applies, the other finds it done.
    [a, b] = await Promise.all([openPgState(db.url(), silentLogger()), openPgState(db.url(), silentLogger())]);
    sql = new pg.Client({ connectionString: db.url() });
    sql.on('error', () => undefined); // the outage test stops the server under it
    await sql.connect();
  });
  afterAll(async () => {
    await sql?.end().catch(() => undefined);
    await a?.close();
    await b?.close();
    await db?.destroy();
  });

  it('migrations are recorded once and re-running them changes nothing', async () => {
    const r = await sql.query('SELECT version FROM rolecast_schema ORDER BY version');
    expect(r.rows.map((x: { version: number }) => x.version)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(await migrate(sql)).toEqual([]);
  });

  it('two servers racing for the same addresses never give one address to two MACs', async () => {
    const ips = Array.from({ length: 40 }, (_, i) => `10.9.0.${i + 10}`);
    const tries: Array<Promise<{ ok: boolean; mac: string; ip: string }>> = [];
    for (let i = 0; i < 200; i++) {
      const mac = `52:54:00:aa:00:${i.toString(16).padStart(2, '0')}`;
      const ip = ips[i % ips.length]!;
      const store = i % 2 ? a.leases : b.leases;
      tries.push(store.commit(lease(mac, ip), { network: 'lab' }).then((ok) => ({ ok, mac, ip })));
    }
    const results = await Promise.all(tries);
    const won = results.filter((r) => r.ok);
    expect(won.length).toBe(ips.length);
    expect(new Set(won.map((r) => r.ip)).size).toBe(ips.length);
    const rows = (await sql.query("SELECT mac, ip FROM leases WHERE network = 'lab' AND ip LIKE '10.9.%'")).rows as Array<{ mac: string; ip: string }>;
    expect(rows.length).toBe(ips.length);
    for (const w of won) expect(rows).toContainEqual({ mac: w.mac, ip: w.ip });
    // Both caches converge on the table (the loser learns of the winner's grants from NOTIFY).
    for (const s of [a, b]) await waitFor(() => won.every((w) => s.leases.holder(w.ip)?.mac === w.mac), 3000);
  });

  it('one batch of hundreds of changes (migration 4): decided in order, one NOTIFY per ~60 reaching the other server', async () => {
    // Past 64 changes migration 2 needed one subtransaction each; now none. 300 grants, every tenth
    // of them an address an earlier change of the same batch took for another MAC (refused), then
    // releases of what this origin wrote and of what it did not.
    const batch: Array<Record<string, unknown>> = [];
    const exp = new Date(Date.now() + 600_000).toISOString();
    for (let i = 0; i < 300; i++) {
      const ip = i >= 250 ? `10.9.8.${i - 250}` : `10.9.7.${i % 10 === 9 ? i - 1 : i}`;
      batch.push({ network: 'lab', mac: `52:54:00:dd:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`, ip, state: 'bound', expiresAt: exp, host: null, reserved: false });
    }
    batch.push({ ...batch[0], state: 'released' });
    const r = await sql.query<{ r: Array<boolean | null> }>('SELECT rolecast_lease_commit($1::jsonb, $2) AS r', [JSON.stringify(batch), a.link.serverId]);
    const res = r.rows[0]!.r;
    const want = batch.map((c, i) => (i === 300 ? true : i < 250 && i % 10 === 9 ? false : true));
    expect(res).toEqual(want);
    const other = await sql.query<{ r: Array<boolean | null> }>('SELECT rolecast_lease_commit($1::jsonb, $2) AS r', [JSON.stringify([{ ...batch[1], state: 'released' }]), 'someone-else']);
    expect(other.rows[0]!.r).toEqual([false]); // a server releases only what it wrote last
    const rows = (await sql.query("SELECT count(*)::int AS n, count(DISTINCT ip)::int AS d FROM leases WHERE mac LIKE '52:54:00:dd:%' AND state = 'bound'")).rows[0] as { n: number; d: number };
    expect(rows).toEqual({ n: 274, d: 274 }); // 300 grants - 25 refused - 1 released
    // b learns all of them from a's notifications (the store skips its own, so a is not asked).
    await waitFor(() => batch.every((c, i) => !want[i] || i === 0 || i === 300 || b.leases.holder(c.ip as string)?.mac === c.mac), 5000);
    await waitFor(() => b.leases.lastOf(batch[0]!.mac as string)?.state === 'released', 5000);
  });

  it('one MAC, one offer site-wide; a server releases only what it wrote last', async () => {
    const mac = '52:54:00:bb:00:01';
    const stateOf = async () => (await sql.query('SELECT state, ip FROM leases WHERE mac = $1', [mac])).rows[0] as { state: string; ip: string };
    expect(await a.leases.commit(lease(mac, '10.9.1.10'), { network: 'lab' })).toBe(true);
    expect(await b.leases.commit(lease(mac, '10.9.1.11'), { network: 'lab' })).toBe(false); // A answered first
    expect(await b.leases.commit(lease(mac, '10.9.1.10'), { network: 'lab' })).toBe(true); // the same offer: fine
    // The client takes A's offer: A's ACK lands, then B lets "its" offer go — A's lease must stay.
    expect(await a.leases.commit(lease(mac, '10.9.1.10', 'bound'), { network: 'lab' })).toBe(true);
    expect(await b.leases.commit({ ...lease(mac, '10.9.1.10'), state: 'released' })).toBe(true);
    expect(await stateOf()).toEqual({ state: 'bound', ip: '10.9.1.10' });
    await waitFor(() => b.leases.addressOf(mac) === '10.9.1.10', 3000);
    // A late offer from B (its DISCOVER answer committed after A's ACK) must not turn the lease back
    // into an offer that B's release would then free (seen in the two-server burst).
    expect(await b.leases.commit(lease(mac, '10.9.1.10'), { network: 'lab' })).toBe(true);
    expect(await b.leases.commit({ ...lease(mac, '10.9.1.10'), state: 'released' })).toBe(true);
    expect(await stateOf()).toEqual({ state: 'bound', ip: '10.9.1.10' });
    expect(await b.leases.commit(lease('52:54:00:bb:00:02', '10.9.1.10'), { network: 'lab' })).toBe(false);
    // The client's RELEASE to A (the server that ACKed, RFC 2131 §4.4.6) releases it.
    expect(await a.leases.commit({ ...lease(mac, '10.9.1.10'), state: 'released' })).toBe(true);
    expect((await stateOf()).state).toBe('released');
    // A reserved address goes through whatever another server offered this MAC.
    expect(await a.leases.commit(lease(mac, '10.9.1.12'), { network: 'lab' })).toBe(true);
    expect(await b.leases.commit(lease(mac, '10.9.1.99', 'bound'), { network: 'lab', reserved: true })).toBe(true);
  });

  it('a reserved offer and its ACK gathered into one batch: the ACK stores the lease, both are answered, the other server learns it', async () => {
    const mac = '52:54:00:bb:00:31';
    const offer = a.leases.commit(lease(mac, '10.9.3.31'), { network: 'lab', reserved: true });
    const ack = a.leases.commit(lease(mac, '10.9.3.31', 'bound'), { network: 'lab', reserved: true });
    // A renewal right behind it (answered at once) and a pool offer of another MAC in the same window.
    expect(await Promise.all([offer, ack])).toEqual([true, true]);
    expect(await a.leases.commit(lease(mac, '10.9.3.31', 'bound'), { network: 'lab', reserved: true })).toBe(true);
    expect(await a.leases.commit(lease('52:54:00:bb:00:32', '10.9.3.31'), { network: 'lab' })).toBe(false);
    const row = (await sql.query('SELECT state, ip, server FROM leases WHERE mac = $1', [mac])).rows[0] as { state: string; ip: string; server: string };
    expect(row).toEqual({ state: 'bound', ip: '10.9.3.31', server: a.link.serverId });
    await waitFor(() => b.leases.byMacLive(mac)?.state === 'bound', 3000);
  });

  it("an event recorded on one server reaches the other's subscribers and timeline", async () => {
    const seen: BootEvent[] = [];
    const off = b.events.subscribe((e) => seen.push(e));
    a.events.emit({ mac: '52:54:00:cc:00:01', stage: 'dhcp-ack', host: 'x1', address: '10.9.2.1' });
    await waitFor(() => seen.find((e) => e.mac === '52:54:00:cc:00:01'), 3000);
    off();
    expect(b.events.timeline('52:54:00:cc:00:01')[0]).toMatchObject({ stage: 'dhcp-ack', host: 'x1', address: '10.9.2.1' });
    expect(b.events.last('52:54:00:cc:00:01')?.at).toBe(a.events.last('52:54:00:cc:00:01')?.at);
  });

  it('phone-home\'s verified flag (issue 16) reaches the other server and a server that loads it later', async () => {
    const mac = '52:54:00:cc:00:02';
    a.events.emit({ mac, stage: 'dhcp-ack', address: '10.9.2.2' });
    a.events.emit({ mac, stage: 'booted', address: '10.9.2.2', verified: true });
    a.events.emit({ mac, stage: 'failed', address: '10.9.2.99', verified: false });
    const flags = (s: PgState) => s.events.timeline(mac).map((e) => [e.stage, e.verified]);
    const want = [['dhcp-ack', undefined], ['booted', true], ['failed', false]];
    await waitFor(() => b.events.timeline(mac).length === 3, 3000);
    expect(flags(b)).toEqual(want);
    await waitFor(async () => (await sql.query('SELECT count(*)::int AS n FROM events WHERE mac = $1', [mac])).rows[0].n === 3, 3000);
    const c = await openPgState(db.url(), silentLogger());
    try { expect(flags(c)).toEqual(want); } finally { await c.close(); }
  });

  it("a failed read of another server's batch: later batches read meanwhile do not make the catch-up skip it", async () => {
    // Ids are handed out at insert, batches read one by one as notified. Batch 1's read fails (the
    // connection dies under it), batch 2's read, next in line, succeeds on another pooled connection;
    // then the link is back and catches up. It used to catch up from the highest id delivered (batch
    // 2's), so batch 1 never reached this server.
    const mac = '52:54:00:cc:00:07';
    const pool = b.link.pool as unknown as { query: (...args: unknown[]) => Promise<unknown> };
    const real = pool.query.bind(pool);
    let release: ((fail: boolean) => void) | undefined;
    let held = 0;
    pool.query = (...args: unknown[]) => {
      const text = typeof args[0] === 'string' ? args[0] : '';
      if (!text.includes('WHERE id BETWEEN') || held++ > 0) return real(...args);
      return new Promise<boolean>((r) => { release = r; }).then(() => {
        throw Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' });
      });
    };
    try {
      a.events.emit({ mac, stage: 'dhcp-discover' });
      await waitFor(() => release, 3000);
      a.events.emit({ mac, stage: 'dhcp-offer', address: '10.9.2.7' });
      await waitFor(() => a.events.backlog === 0, 3000);
      await new Promise((r) => setTimeout(r, 300)); // batch 2's notification reaches b, its read queues
      release!(true);
      await waitFor(() => b.events.timeline(mac).length >= 2 && b.link.up, 5000);
      await new Promise((r) => setTimeout(r, 300));
      expect(b.events.timeline(mac).map((e) => e.stage)).toEqual(['dhcp-discover', 'dhcp-offer']);
    } finally {
      pool.query = real;
    }
  });

  it('served records, discovered machines and power actions are shared', async () => {
    await a.served.record('52:54:00:dd:00:01', { host: 'w1', role: 'web', hash: 'h1', at: new Date().toISOString() });
    await a.discovered.put({ mac: '52:54:00:dd:00:02', macs: ['52:54:00:dd:00:02'], firstSeen: 't', lastSeen: 't', state: 'waiting', facts: { cpus: 2 } });
    await a.power.record({ host: 'w1', op: 'cycle', at: new Date().toISOString(), ok: true, state: 'on', ms: 12 });
    await waitFor(() => b.served.get('52:54:00:dd:00:01')?.hash === 'h1' && b.discovered.get('52:54:00:dd:00:02') && b.power.list('w1').length === 1, 3000);
    expect(b.power.list('w1')[0]).toMatchObject({ host: 'w1', op: 'cycle', ok: true, state: 'on', ms: 12 });
    expect(await b.discovered.remove('52:54:00:dd:00:02')).toBe(true);
    await waitFor(() => a.discovered.get('52:54:00:dd:00:02') === undefined, 3000);
  });

  it('profiles: push, identical push, compare-and-swap edits from two servers, validation, log, rollback', async () => {
    const sources = await readSources(PROFILES);
    const versions: number[] = [];
    b.profiles.onChange((v) => versions.push(v));
    expect(await a.profiles.push(sources, 'alice', 'initial')).toEqual({ version: 1, created: true });
    expect(await a.profiles.push(sources, 'alice', 'again')).toEqual({ version: 1, created: false });
    await waitFor(() => versions.includes(1), 2000);

    const { hash } = await a.profiles.read(MACHINES_FILE);
    const setRole = (host: string, role: string) => (t: string) => t.replace(new RegExp(`(host: ${host},[^}]*role: )\\w+`), `$1${role}`);
    // Two servers edit at once: serialised, both land.
    await Promise.all([
      a.profiles.edit(MACHINES_FILE, setRole('w106', 'lb'), { who: 'alice', what: 'assign w106 lb' }),
      b.profiles.edit(MACHINES_FILE, setRole('w104', 'db'), { who: 'bob', what: 'assign w104 db' }),
    ]);
    const now = (await b.profiles.current());
    expect(now.version).toBe(3);
    const text = now.sources.find((s) => s.name === MACHINES_FILE)!.text;
    expect(text).toMatch(/host: w106,[^}]*role: lb/);
    expect(text).toMatch(/host: w104,[^}]*role: db/);
    // An edit based on an old read is refused.
    await expect(a.profiles.edit(MACHINES_FILE, setRole('w106', 'web'), { expectHash: hash })).rejects.toMatchObject({ code: 'E_CONFLICT' });
    // An invalid edit: the loader's own message, nothing stored.
    const bad = (t: string) => t.replace(/(host: w106,[^}]*role: )\w+/, '$1files');
    let fileMessage = '';
    try { parseSources(now.sources.map((s) => (s.name === MACHINES_FILE ? { ...s, text: bad(s.text) } : s))); } catch (err) { fileMessage = (err as Error).message; }
    const e = await a.profiles.edit(MACHINES_FILE, bad).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(ProfileError);
    expect((e as Error).message).toBe(fileMessage);
    expect((e as Error).message).toMatch(/machines\.yaml:\d+:\d+: machines\[\d+\]\.role: unknown role "files"/);
    expect((await a.profiles.current()).version).toBe(3);

    const log = await b.profiles.log();
    expect(log.map((v) => [v.version, v.who, v.changed])).toEqual([[3, expect.any(String), ['machines.yaml']], [2, expect.any(String), ['machines.yaml']], [1, 'alice', sources.map((s) => `+${s.name}`).sort((x, y) => x.slice(1).localeCompare(y.slice(1)))]]);
    expect(await a.profiles.rollback(1, 'carol')).toEqual({ version: 4, created: true });
    expect((await a.profiles.read(MACHINES_FILE)).hash).toBe(hash);
    await waitFor(() => versions.includes(4), 2000);
  });

  it('rolecast profiles push, log, pull, rollback (the CLI, on the same database)', async () => {
    const url = ['--state-url', db.url()];
    const tmp = mkdtempSync(join(tmpdir(), 'rolecast-pgcli-'));
    try {
      const edited = join(tmp, 'edited');
      cpSync(PROFILES, edited, { recursive: true });
      const f = join(edited, MACHINES_FILE);
      writeFileSync(f, readFileSync(f, 'utf8').replace(/(host: w103,[^}]*role: )\w+/, '$1db'));
      const push = await cli(['profiles', 'push', edited, ...url, '-m', 'w103 becomes a db']);
      expect(push.stdout).toMatch(/pushed as version (\d+)/);
      const v = Number(/version (\d+)/.exec(push.stdout)![1]);
      expect((await cli(['profiles', 'push', edited, ...url])).stdout).toMatch(`unchanged, still version ${v}`);
      const log = await cli(['profiles', 'log', ...url, '--json']);
      expect(JSON.parse(log.stdout)[0]).toMatchObject({ version: v, what: 'w103 becomes a db', changed: ['machines.yaml'] });
      expect((await cli(['profiles', 'log', ...url])).stdout).toMatch(new RegExp(`^${v} +\\S+ +\\S+ +w103 becomes a db +machines.yaml$`, 'm'));
      // An invalid set: the same messages as `rolecast validate`, nothing stored.
      writeFileSync(f, readFileSync(f, 'utf8').replace(/(host: w103,[^}]*role: )\w+/, '$1files'));
      const bad = await cli(['profiles', 'push', edited, ...url]);
      const validate = await cli(['validate', '--profiles', edited]);
      expect(bad.code).toBe(1);
      const issues = validate.stderr.split('\n').filter((l) => /^machines\.yaml:/.test(l));
      expect(issues.length).toBe(1);
      expect(bad.stderr.split('\n')).toEqual(expect.arrayContaining(issues));
      expect(bad.stderr).toMatch(/machines\.yaml:\d+:\d+: machines\[\d+\]\.role: unknown role "files"/);
      const pulled = join(tmp, 'pulled');
      expect((await cli(['profiles', 'pull', pulled, ...url])).code).toBe(0);
      expect(readFileSync(join(pulled, MACHINES_FILE), 'utf8')).toMatch(/host: w103,[^}]*role: db/);
      expect(readdirSync(join(pulled, 'roles')).sort()).toEqual(readdirSync(join(PROFILES, 'roles')).sort());
      expect((await cli(['profiles', 'rollback', String(v - 1), ...url])).stdout).toMatch(`version ${v - 1} is current again, as version ${v + 1}`);
      expect((await cli(['profiles', 'rollback', 'x', ...url])).code).toBe(2);
      expect((await cli(['profiles', 'log'])).stderr).toMatch(/profiles are kept in PostgreSQL only/);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('database stopped and started: reserved grants and events go on, pool grants are refused, it recovers by itself', async () => {
    const seenOnB: BootEvent[] = [];
    b.events.subscribe((e) => seenOnB.push(e));
    await db.pgStopAsync();
    await waitFor(() => !a.leases.canAllocate() && !b.leases.canAllocate(), 5000);
    expect(a.health()).toMatchObject({ backend: 'postgres', up: false });
    expect(await a.leases.commit(lease('52:54:00:ee:00:01', '10.9.3.10'), { network: 'lab' })).toBe(false);
    expect(await a.leases.commit(lease('52:54:00:ee:00:02', '10.9.3.20', 'bound'), { network: 'lab', reserved: true })).toBe(true);
    expect(a.leases.addressOf('52:54:00:ee:00:02')).toBe('10.9.3.20');
    // A long outage's queue: 6,000 reserved grants (two advisory locks each) and, across the first batch's
    // end, one MAC's release after its grant. Written in batches of at most 500 changes, in order (in one
    // transaction they would need 8,000 locks: more than the lock table of this cluster holds).
    const many = Array.from({ length: 6000 }, (_, i) => ({ mac: `52:54:00:e1:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`, ip: `10.10.${i >> 8}.${i & 255}` }));
    for (const [i, m] of many.entries()) {
      expect(await a.leases.commit(lease(m.mac, m.ip, 'bound'), { network: 'lab', reserved: true })).toBe(true);
      if (i === 499) expect(await a.leases.commit({ ...lease(m.mac, m.ip, 'released'), expiresAt: new Date().toISOString() }, { network: 'lab' })).toBe(true);
    }
    for (let i = 0; i < 20; i++) a.events.emit({ mac: '52:54:00:ee:00:02', stage: 'http-script', detail: `during outage ${i}` });
    expect(a.events.timeline('52:54:00:ee:00:02').length).toBe(20);
    await expect(a.profiles.edit(MACHINES_FILE, (t) => t)).rejects.toMatchObject({ code: 'E_STATE_UNAVAILABLE' });
    await db.pgStartAsync();
    await waitFor(() => a.leases.canAllocate() && b.leases.canAllocate(), 10_000);
    await waitFor(async () => Number((await queryFresh(db, "SELECT count(*) AS n FROM events WHERE mac = '52:54:00:ee:00:02'")).n) === 20, 5000);
    expect((await queryFresh(db, "SELECT state FROM leases WHERE mac = '52:54:00:ee:00:02'")).state).toBe('bound');
    await waitFor(async () => Number((await queryFresh(db, "SELECT count(*) AS n FROM leases WHERE mac LIKE '52:54:00:e1:%'")).n) === 6000, 10_000);
    expect(await queryFresh(db, "SELECT count(*) FILTER (WHERE state = 'bound')::int AS bound, count(*) FILTER (WHERE state = 'released')::int AS released FROM leases WHERE mac LIKE '52:54:00:e1:%'")).toEqual({ bound: 5999, released: 1 });
    expect((await queryFresh(db, `SELECT state FROM leases WHERE mac = '${many[499]!.mac}'`)).state).toBe('released');
    // B missed the notifications while down: it catches up from the table.
    await waitFor(() => seenOnB.filter((e) => e.mac === '52:54:00:ee:00:02').length === 20, 5000);
    expect(b.leases.addressOf('52:54:00:ee:00:02')).toBe('10.9.3.20');
  });
});

async function queryFresh(db: PgCluster, q: string): Promise<Record<string, unknown>> {
  const c = new pg.Client({ connectionString: db.url() });
  await c.connect();
  try { return (await c.query(q)).rows[0] as Record<string, unknown>; } finally { await c.end(); }
}
