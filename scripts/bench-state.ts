#!/usr/bin/env -S node --import tsx
// The state layer alone, as a DHCP exchange uses it: per exchange, four boot events (discover, offer,
// request, ack) and the ACK's lease commit (a reserved machine: the first ACK of a MAC waits for the
// store, its renewals are answered at once), paced at BENCH_STATE_RATE exchanges/s (default 4000) over
// BENCH_STATE_MACS machines (default 1000) for BENCH_SECONDS (default 6). Prints, per backend (file,
// postgres: Debian's PostgreSQL started here in a temp dir), the CPU this process spent per exchange
// (user and system), the PostgreSQL cluster's CPU per exchange, the queries sent and the longest
// event-loop delay. No sockets and no DHCP: what differs between the backends, measured without the
// rest of the server (and much less sensitive to a loaded host than bench:dhcp's rate).
//
// Then the served records of a boot storm in a big fleet: BENCH_STATE_SERVED_MACS machines (10,000) with
// a record already, then BENCH_STATE_SERVED_N (300) rootfs responses recording theirs at
// BENCH_STATE_SERVED_RATE per second (60): CPU per record and the longest event-loop delay, per backend.
// Usage: node --import tsx scripts/bench-state.ts [file,postgres]
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { spawnSync } from 'node:child_process';
import { silentLogger } from '../src/log.js';
import { openState } from '../src/state/open.js';
import type { LeaseStore, EventLog, ServedStore } from '../src/state/types.js';
import { PgCluster } from '../test/helpers/pg.js';

const RATE = Number(process.env.BENCH_STATE_RATE ?? 4000);
const MACS = Number(process.env.BENCH_STATE_MACS ?? 1000);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 6);
const backends = (process.argv[2] ?? 'file,postgres').split(',');
// BENCH_STATE_PGSTAT=1: pg_stat_statements in the temp cluster; the statements' time per exchange is printed.
const PGSTAT = process.env.BENCH_STATE_PGSTAT === '1';
const TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

const mac = (i: number) => `52:54:01:${((i >> 16) & 255).toString(16).padStart(2, '0')}:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
const ipOf = (i: number) => `10.0.${1 + (i >> 8)}.${i & 255}`;

function clusterCpu(top: number | undefined): number {
  if (!top) return 0;
  let sum = 0;
  for (const d of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(d)) continue;
    try {
      const f = readFileSync(`/proc/${d}/stat`, 'utf8').split(') ')[1]!.split(' ');
      if (Number(d) === top || Number(f[1]) === top) sum += (Number(f[11]) + Number(f[12])) / TICKS;
    } catch { /* gone */ }
  }
  return sum;
}

async function run(leases: LeaseStore, events: EventLog, pgPid: number | undefined, mark: () => Promise<void>): Promise<string> {
  let n = 0;
  let refused = 0;
  const exchange = async (i: number) => {
    const m = mac(i % MACS);
    const host = `w${i % MACS}`;
    const ip = ipOf(i % MACS);
    events.emit({ mac: m, host, stage: 'dhcp-discover', detail: 'PXEClient:Arch:00000:UNDI:002001' });
    events.emit({ mac: m, host, stage: 'dhcp-offer', address: ip });
    const ok = await leases.commit({ mac: m, ip, state: 'bound', expiresAt: new Date(Date.now() + 3_600_000).toISOString(), host }, { network: 'lab', reserved: true });
    if (!ok) refused++;
    events.emit({ mac: m, host, stage: 'dhcp-request', address: ip });
    events.emit({ mac: m, host, stage: 'dhcp-ack', address: ip });
  };
  // Warm up: every MAC's first (durable) ACK, then measure renewals at the pace asked.
  await Promise.all(Array.from({ length: MACS }, (_, i) => exchange(i)));
  await new Promise((r) => setTimeout(r, 500));
  await mark();
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  const cpu0 = process.cpuUsage();
  const pg0 = clusterCpu(pgPid);
  const t0 = performance.now();
  const total = RATE * SECONDS;
  const pending: Promise<void>[] = [];
  while (n < total) {
    const due = Math.min(total, Math.floor(((performance.now() - t0) / 1000) * RATE));
    while (n < due) pending.push(exchange(MACS + n++));
    await new Promise((r) => setTimeout(r, 1));
  }
  await Promise.all(pending);
  const cpu = process.cpuUsage(cpu0);
  const pgUs = ((clusterCpu(pgPid) - pg0) / total) * 1e6;
  h.disable();
  return `${((cpu.user + cpu.system) / total).toFixed(1)} µs CPU per exchange (user ${(cpu.user / total).toFixed(1)}, system ${(cpu.system / total).toFixed(1)})`
    + `${pgPid ? ` + ${pgUs.toFixed(1)} µs PostgreSQL` : ''}; event-loop delay max ${(h.max / 1e6).toFixed(1)} ms, p99 ${(h.percentile(99) / 1e6).toFixed(1)} ms; ${refused} refused; ${((performance.now() - t0) / 1000).toFixed(1)} s`;
}

const SERVED_MACS = Number(process.env.BENCH_STATE_SERVED_MACS ?? 10_000);
const SERVED_N = Number(process.env.BENCH_STATE_SERVED_N ?? 300);
const SERVED_RATE = Number(process.env.BENCH_STATE_SERVED_RATE ?? 60);

async function servedStorm(served: ServedStore, pgPid: number | undefined): Promise<string> {
  const entry = (i: number, at: string) => ({ host: `w${i}`, role: 'web', hash: i.toString(16).padStart(64, '0'), at });
  await Promise.all(Array.from({ length: SERVED_MACS }, (_, i) => served.record(mac(i), entry(i, '2026-01-01T00:00:00.000Z'))));
  await new Promise((r) => setTimeout(r, 500));
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  const cpu0 = process.cpuUsage();
  const pg0 = clusterCpu(pgPid);
  const t0 = performance.now();
  const pending: Promise<void>[] = [];
  for (let n = 0; n < SERVED_N;) {
    const due = Math.min(SERVED_N, Math.floor(((performance.now() - t0) / 1000) * SERVED_RATE));
    while (n < due) { pending.push(served.record(mac(n), entry(n, new Date().toISOString()))); n++; }
    await new Promise((r) => setTimeout(r, 5));
  }
  await Promise.all(pending);
  const cpu = process.cpuUsage(cpu0);
  const pgUs = ((clusterCpu(pgPid) - pg0) / SERVED_N) * 1e6;
  h.disable();
  return `${((cpu.user + cpu.system) / SERVED_N / 1000).toFixed(2)} ms CPU per record${pgPid ? ` + ${(pgUs / 1000).toFixed(2)} ms PostgreSQL` : ''}; `
    + `event-loop delay max ${(h.max / 1e6).toFixed(1)} ms, p99 ${(h.percentile(99) / 1e6).toFixed(1)} ms; ${((performance.now() - t0) / 1000).toFixed(1)} s`;
}

let cluster: PgCluster | undefined;
const dir = mkdtempSync(join(tmpdir(), 'rolecast-bench-state-'));
try {
  for (const b of backends) {
    const logger = silentLogger();
    let state;
    if (b === 'postgres') {
      cluster ??= await PgCluster.start(PGSTAT ? ["shared_preload_libraries = 'pg_stat_statements'", "pg_stat_statements.track = 'all'", "track_functions = 'all'"] : []);
      state = await openState({ dataDir: join(dir, 'pg'), profilesDir: dir, state: { backend: 'postgres', url: cluster.url() } }, { logger, parts: ['leases', 'events', 'served'], dataDir: join(dir, 'pg') });
    } else {
      state = await openState({ dataDir: join(dir, 'file'), profilesDir: dir, state: { backend: 'file' } }, { logger, parts: ['leases', 'events', 'served'], follow: false });
    }
    let queries = 0;
    const pool = (state as unknown as { link?: { pool: { query: (...a: unknown[]) => unknown } } }).link?.pool;
    if (pool) { const q = pool.query.bind(pool); pool.query = (...a: unknown[]) => { queries++; return q(...a); }; }
    const line = await run(state.leases, state.events, b === 'postgres' ? cluster?.pid() : undefined, async () => {
      if (PGSTAT && pool) await pool.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements; SELECT pg_stat_statements_reset()');
      queries = 0;
    });
    console.log(`${b.padEnd(8)} ${RATE}/s x ${SECONDS} s, ${MACS} machines: ${line}${pool ? `; ${queries} queries` : ''}`);
    if (PGSTAT && pool) {
      const r = await (pool.query(`SELECT calls, total_exec_time AS t, rows, toplevel, regexp_replace(left(query, 120), '\\s+', ' ', 'g') AS q
        FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 16`) as Promise<{ rows: Array<{ calls: string; t: number; toplevel: boolean; q: string }> }>);
      const total = RATE * SECONDS;
      const t = await (pool.query(`SELECT relname, n_tup_ins, n_tup_upd, n_tup_hot_upd, n_dead_tup, pg_relation_size(relid) AS bytes FROM pg_stat_user_tables WHERE relname IN ('leases', 'events')`) as Promise<{ rows: unknown[] }>);
      for (const x of t.rows) console.log(`  ${JSON.stringify(x)}`);
      for (const x of r.rows) console.log(`  ${((x.t * 1000) / total).toFixed(1).padStart(6)} µs/exch ${String(x.calls).padStart(7)} calls ${x.toplevel ? 'top ' : 'nest'} ${x.q}`);
    }
    console.log(`${b.padEnd(8)} served records: ${SERVED_N} at ${SERVED_RATE}/s among ${SERVED_MACS} machines: ${await servedStorm(state.served, b === 'postgres' ? cluster?.pid() : undefined)}`);
    await state.close();
  }
} finally {
  await cluster?.destroy();
  rmSync(dir, { recursive: true, force: true });
}
