// PostgreSQL's own CPU per lease renewal and per event row, on the statements rolecast sends (no
// rolecast, no DHCP): a temp cluster (test/helpers/pg.ts), the schema migrated up to BENCH_PG_MIGRATION
// (default: all), BENCH_PG_MACS leases (default 1000), then batches of BENCH_PG_BATCH renewals (default
// 150) and batches of 600 event rows. The figure is the backend process's CPU time (/proc), so a loaded
// host inflates it less than the wall time printed beside it.
// Usage: node --import tsx scripts/bench-pg-sql.ts   (e.g. BENCH_PG_MIGRATION=5 for the previous lease commit)
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import pg from 'pg';
import { PgCluster } from '../test/helpers/pg.js';
import { migrate, MIGRATIONS } from '../src/state/pg/migrations.js';

const TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;
const MACS = Number(process.env.BENCH_PG_MACS ?? 1000);
const BATCH = Math.min(MACS, Number(process.env.BENCH_PG_BATCH ?? 150));
const UPTO = Number(process.env.BENCH_PG_MIGRATION ?? MIGRATIONS.at(-1)!.version);
const CHANGES = Number(process.env.BENCH_PG_CHANGES ?? 45_000);
const cpuOf = (pid: number) => { const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' '); return (Number(f[11]) + Number(f[12])) / TICKS; };
const mac = (i: number) => `52:54:01:${((i >> 16) & 255).toString(16).padStart(2, '0')}:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
const ipOf = (i: number) => `10.${1 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`;
const EVENTS = `WITH ins AS (INSERT INTO events (mac, stage, at, host, detail, address, verified, server)
    SELECT mac, stage, at, host, detail, address, verified, $8 FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::text[], $6::text[], $7::boolean[])
      AS x(mac, stage, at, host, detail, address, verified) RETURNING id)
  SELECT pg_notify('rolecast_events', json_build_object('s', $8::text, 'from', min(id), 'to', max(id))::text), set_config('synchronous_commit', 'off', true) FROM ins`;

const cluster = await PgCluster.start();
try {
  const c = new pg.Client({ connectionString: cluster.url() });
  c.on('error', () => undefined);
  await c.connect();
  await migrate(c, MIGRATIONS.filter((m) => m.version <= UPTO));
  const pid = (await c.query<{ p: number }>('SELECT pg_backend_pid() AS p')).rows[0]!.p;
  const change = (i: number, ms: number) => ({ network: 'lab', mac: mac(i), ip: ipOf(i), state: 'bound', expiresAt: new Date(Date.now() + 3_600_000 + ms).toISOString(), host: `w${i}`, reserved: true });
  const commit = (batch: unknown[]) => c.query({ name: 'commit', text: "SELECT rolecast_lease_commit($1::jsonb, $2) AS r, set_config('synchronous_commit', 'off', true)", values: [JSON.stringify(batch), 'bench'] });
  for (let i = 0; i < MACS; i += BATCH) await commit(Array.from({ length: Math.min(BATCH, MACS - i) }, (_, k) => change(i + k, 0)));
  // Renewals: each batch BATCH distinct MACs (a stride through all of them), each already holding its address.
  const rounds = Math.ceil(CHANGES / BATCH);
  let k = 0;
  let cpu0 = cpuOf(pid);
  let t0 = performance.now();
  for (let r = 0; r < rounds; r++) await commit(Array.from({ length: BATCH }, () => change(k++ % MACS, r + 1)));
  const per = (x: number, n: number) => ((x * 1e6) / n).toFixed(1);
  console.log(`migrations 1-${UPTO}, ${MACS} leases, batches of ${BATCH} renewals: ${per(cpuOf(pid) - cpu0, rounds * BATCH)} µs backend CPU per renewal (wall ${per((performance.now() - t0) / 1000, rounds * BATCH)} µs)`);
  const N = 600;
  cpu0 = cpuOf(pid);
  t0 = performance.now();
  const stages = ['dhcp-discover', 'dhcp-offer', 'dhcp-request', 'dhcp-ack'];
  for (let r = 0; r < 100; r++) {
    const cols: unknown[][] = [[], [], [], [], [], [], []];
    for (let i = 0; i < N; i++) {
      const m = (r * N + i) % MACS;
      cols[0]!.push(mac(m)); cols[1]!.push(stages[i % 4]); cols[2]!.push(new Date().toISOString()); cols[3]!.push(`w${m}`);
      cols[4]!.push(i % 4 === 0 ? 'PXEClient:Arch:00000:UNDI:002001' : null); cols[5]!.push(i % 4 ? ipOf(m) : null); cols[6]!.push(null);
    }
    await c.query({ name: 'events', text: EVENTS, values: [...cols, 'bench'] });
  }
  console.log(`batches of ${N} events: ${per(cpuOf(pid) - cpu0, 100 * N)} µs backend CPU per event row (wall ${per((performance.now() - t0) / 1000, 100 * N)} µs)`);
  await c.end();
} finally {
  await cluster.destroy();
}
