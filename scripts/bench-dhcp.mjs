#!/usr/bin/env node
// npm run bench:dhcp — perfdhcp (kea) against rolecast and against dnsmasq, same namespace pair, same run.
// Known machines, as in production: both servers get the same reservations (rolecast from generated
// profiles, dnsmasq from a dhcp-hostsfile with the same MAC,IP pairs), and perfdhcp draws its clients'
// MACs from that list (-M). perfdhcp runs as a relay (giaddr = its address) so both servers unicast.
// dnsmasq runs with production flags (-k --quiet-dhcp, its lease file on disk, no --log-dhcp), rolecast
// with its defaults (lease journal fdatasync'd before each ACK, logging at info); both log to a file.
// Per inventory size (BENCH_DHCP_SIZES, default 10,1000,10000) and server, BENCH_RUNS runs (default 3) of:
// 1000 exchanges/s for BENCH_SECONDS (drops, OFFER latency p50/p99 from perfdhcp's timestamps), then flat
// out (exchanges/s). Medians are printed with rolecast/dnsmasq ratios, against bare dnsmasq (the issue's
// yardstick: 8 options, no boot file) and against dnsmasq-boot (the same boot answers as rolecast's).
// rolecast runs twice per round: with the file state (default) and with the postgres state backend
// (`rolecast-pg`: Debian's PostgreSQL 15 started here in a temp dir, unix socket, a fresh database per run),
// so the cost of sharing leases between servers is a ratio from the same run (BENCH_DHCP_PG=0 skips it).
// CPU per exchange counts the server's whole process tree (threads, children, reaped children), user and
// system apart. BENCH_DHCP_SERVERS=rolecast,dnsmasq picks servers (rolecast-main: DHCP on the main thread; rolecast-base:
// the built checkout at BENCH_DHCP_BASE, for a same-run A/B of a change; dnsmasq-boot: dnsmasq with rolecast's boot answers); BENCH_DHCP_PERF=DIR records `perf record -g`
// of each flat-out run (node gets --perf-basic-prof so JIT frames have names; `perf report -i FILE`).
// BENCH_DHCP_THREADS=1 prints each server's CPU per exchange by thread name (main, DHCP thread, V8 and libuv helpers).
// The client's (perfdhcp's) CPU per exchange is measured too, and the ceiling it puts on any server on this box
// (cores / client CPU per exchange). BENCH_DHCP_PIN=1 adds a flat-out run per server with perfdhcp on core 0 and the
// server on core 1 (taskset), printed as a line of its own beside the default (unpinned) one.
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeProfiles } from './bench-profiles.mjs';
import { processTree } from './bench-cpu.mjs';

const ROOT = join(fileURLToPath(import.meta.url), '../..');
if (process.getuid?.() !== 0) { console.error('bench:dhcp needs root (network namespaces)'); process.exit(1); }
const SIZES = (process.env.BENCH_DHCP_SIZES ?? '10,1000,10000').split(',').map(Number);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const id = process.pid;
const S = `${process.env.ROLECAST_NS_PREFIX ?? ''}rcbs${id}`;
const C = `${process.env.ROLECAST_NS_PREFIX ?? ''}rcbc${id}`;
const ip = (...a) => { const r = spawnSync('ip', a, { encoding: 'utf8' }); if (r.status !== 0) throw new Error(`ip ${a.join(' ')}: ${r.stderr}`); };
const dir = mkdtempSync(join(tmpdir(), 'rolecast-bench-dhcp-'));
chmodSync(dir, 0o755); // dnsmasq reads its hostsfile after dropping to nobody
const procs = [];
const median = (a) => { const s = a.filter((x) => Number.isFinite(x)).sort((x, y) => x - y); return s.length ? s[Math.floor((s.length - 1) / 2)] : NaN; };
const pct = (a, p) => { const s = [...a].sort((x, y) => x - y); return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] : NaN; };
const THREADS = process.env.BENCH_DHCP_THREADS === '1';
const PIN = process.env.BENCH_DHCP_PIN === '1';
const CORES = availableParallelism();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** OFFER latencies (ms) from perfdhcp -x t: "sent / received: 000001.300141 / 000001.305521" lines. */
function offerDelays(out) {
  const part = out.split('***Timestamps for packets: DISCOVER-OFFER***')[1]?.split('***')[0] ?? '';
  return [...part.matchAll(/sent \/ received: ([0-9.]+) \/ ([0-9.]+)/g)].map((m) => ({ sent: Number(m[1]), ms: (Number(m[2]) - Number(m[1])) * 1000 }));
}

/** When the slow OFFERs (over 5 ms) were asked for, in seconds from the run's first DISCOVER: start-up, or all along. */
function slowOffers(delays) {
  const t0 = Math.min(...delays.map((d) => d.sent));
  const slow = delays.filter((d) => d.ms > 5).map((d) => d.sent - t0);
  if (!slow.length) return 'none over 5 ms';
  const bins = new Map();
  for (const t of slow) bins.set(Math.floor(t), (bins.get(Math.floor(t)) ?? 0) + 1);
  return `${slow.length} over 5 ms, by second of the run: ${[...bins].sort((a, b) => a[0] - b[0]).map(([t, n]) => `${t}s ${n}`).join(', ')}`;
}

/** Box-wide CPU seconds from /proc/stat (all cores): busy and total, to see how much of the box a run used. */
function boxCpu() {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const total = f.reduce((a, b) => a + b, 0) / TICKS;
  return { busy: total - (f[3] + f[4]) / TICKS, total };
}

/**
 * perfdhcp in the client namespace. Its own CPU (user + system, both its threads) comes from the shell that
 * waits for it (`times`: the children's CPU), so the client's cost per exchange is measured beside the
 * server's in the same run. `pin`: a CPU list for taskset (the client on one core, the server on the other).
 */
function perfdhcp(macFile, rate, seconds, timestamps, pin) {
  const args = ['-4', '-r', String(rate), '-p', String(seconds), '-M', macFile,
    ...(timestamps ? ['-x', 't'] : []), '-o', `60,${Buffer.from('PXEClient:Arch:00000:UNDI:002001').toString('hex')}`, '10.0.0.1'];
  const box0 = boxCpu();
  const r = spawnSync('sh', ['-c', `${pin ? `taskset -c ${pin} ` : ''}ip netns exec "$0" perfdhcp "$@"; times >&2`, C, ...args],
    { encoding: 'utf8', timeout: (seconds + 30) * 1000, maxBuffer: 256 * 2 ** 20 });
  const box1 = boxCpu();
  const out = r.stdout + r.stderr;
  const drops = [...out.matchAll(/^drops: ([0-9]+)/gm)].map((m) => Number(m[1]));
  const timed = timestamps ? offerDelays(out) : [];
  const delays = timed.map((d) => d.ms);
  // `times`: the shell's own user/system, then its children's (perfdhcp's), as "0m1.234s 0m0.567s".
  const t = [...(r.stderr.trim().split('\n').pop() ?? '').matchAll(/([0-9]+)m([0-9.]+)s/g)].map((m) => Number(m[1]) * 60 + Number(m[2]));
  return {
    slow: timed.length ? slowOffers(timed) : '',
    rate: Number(/Rate: ([0-9.]+) 4-way/.exec(out)?.[1] ?? 0), drops: drops.reduce((a, b) => a + b, 0),
    sent: Number(/sent packets: ([0-9]+)/.exec(out)?.[1] ?? 0), p50: pct(delays, 50), p99: pct(delays, 99),
    clientCpu: t.length === 2 ? t[0] + t[1] : NaN, boxBusy: box1.busy - box0.busy, boxTotal: box1.total - box0.total,
  };
}

async function waitReady(p, server) {
  if (!server.startsWith('rolecast')) { await sleep(1000); return; }
  for (let i = 0; i < 600 && !readFileSync(p.logFile, 'utf8').includes('rolecast serving'); i++) await sleep(100);
}

/**
 * CPU seconds a server has used so far, from /proc: the process and its descendants, each with its threads
 * and its reaped children (user, system and the sum): the server's own, not the machine's.
 */
function cpuOf(pid) {
  let user = 0;
  let sys = 0;
  for (const p of processTree(pid)) {
    try {
      const f = readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1].split(' ');
      user += (Number(f[11]) + Number(f[13])) / TICKS;
      sys += (Number(f[12]) + Number(f[14])) / TICKS;
    } catch { /* gone */ }
  }
  return { user, sys, all: user + sys };
}
const TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/** CPU seconds of the PostgreSQL cluster (the postmaster and its backends): the postgres backend's other half. */
function pgCpu() {
  const top = pgc?.pid();
  if (!top) return 0;
  let sum = 0;
  for (const d of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(d)) continue;
    try {
      const f = readFileSync(`/proc/${d}/stat`, 'utf8').split(') ')[1].split(' ');
      if (Number(d) === top || Number(f[1]) === top) sum += (Number(f[11]) + Number(f[12])) / TICKS;
    } catch { /* gone */ }
  }
  return sum;
}

/** CPU seconds per thread name of a process tree (BENCH_DHCP_THREADS=1: where a server's CPU goes). */
function cpuByThread(pid) {
  const by = {};
  for (const p of processTree(pid)) {
    let tasks = [];
    try { tasks = readdirSync(`/proc/${p}/task`); } catch { continue; }
    for (const t of tasks.map(Number)) {
      try {
        const st = readFileSync(`/proc/${p}/task/${t}/stat`, 'utf8');
        // Node names every thread "node": the main thread is the one whose id is the process's, the rest by id.
        const comm = st.slice(st.indexOf('(') + 1, st.lastIndexOf(')'));
        const name = t === p ? `${comm}:main` : `${comm}:${t}`;
        const f = st.split(') ')[1].split(' ');
        by[name] = (by[name] ?? 0) + (Number(f[11]) + Number(f[12])) / TICKS;
      } catch { /* gone */ }
    }
  }
  return by;
}
const threadDelta = (a, b, n) => Object.entries(b).map(([k, v]) => [k, ((v - (a[k] ?? 0)) / Math.max(1, n)) * 1e6])
  .filter(([, v]) => v >= 2).sort((x, y) => y[1] - x[1]).map(([k, v]) => `${k} ${v.toFixed(0)}`).join(', ');

/**
 * Waits until the server is idle: its start-up (JIT, background warm-up, journal compaction...) is over, so
 * what the 1000/s window counts is the exchanges' own CPU. Idle: under 2% of a core for two 250 ms polls.
 */
async function settle(pid) {
  const t0 = Date.now();
  const start = cpuOf(pid).all;
  let last = start;
  let quiet = 0;
  while (quiet < 2 && Date.now() - t0 < 30_000) {
    await sleep(250);
    const now = cpuOf(pid).all;
    quiet = now - last < 0.005 ? quiet + 1 : 0;
    last = now;
  }
  return { ms: Date.now() - t0, cpuMs: (last - start) * 1000 };
}

function stop(p) { try { process.kill(-p.pid, 'SIGTERM'); } catch { /* gone */ } }

let pgc;
let pgUrl;
// BENCH_DHCP_PGSTAT=1: load pg_stat_statements (nested statements too: plpgsql's) and count function
// time in the bench's own temp cluster, and print what PostgreSQL spent its time on during each
// flat-out run (it adds its own overhead: a diagnostic, not a figure to compare).
const PGSTAT = process.env.BENCH_DHCP_PGSTAT === '1' || process.env.BENCH_DHCP_PGSTAT === '1000';
async function pgDatabase(name) {
  if (!pgc) {
    const { PgCluster } = await import('../test/helpers/pg.ts');
    pgc = await PgCluster.start(PGSTAT ? ["shared_preload_libraries = 'pg_stat_statements'", "pg_stat_statements.track = 'all'", "track_functions = 'all'"] : []);
  }
  const { default: pg } = await import('pg');
  const c = new pg.Client({ connectionString: pgc.url('postgres') });
  await c.connect();
  await c.query(`CREATE DATABASE ${name}`);
  await c.end();
  return pgc.url(name);
}

/** One query on the run's database (WAL position, statistics). */
async function pgQuery(url, sql) {
  const { default: pg } = await import('pg');
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try { return (await c.query(sql)).rows; } finally { await c.end(); }
}

/** Start of a flat-out run on PostgreSQL: the WAL position, and (PGSTAT) statistics reset. */
async function pgMark(url) {
  if (PGSTAT) {
    await pgQuery(url, 'CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
    await pgQuery(url, 'SELECT pg_stat_statements_reset(), pg_stat_reset()');
  }
  return BigInt((await pgQuery(url, "SELECT (pg_current_wal_lsn() - '0/0')::bigint AS b"))[0].b);
}

/** End of it: WAL bytes per exchange, and (PGSTAT) the statements and functions that took the time. */
async function pgReport(url, wal0, exchanges) {
  const wal = BigInt((await pgQuery(url, "SELECT (pg_current_wal_lsn() - '0/0')::bigint AS b"))[0].b) - wal0;
  const lines = [`    WAL ${(Number(wal) / exchanges).toFixed(0)} bytes per exchange`];
  if (PGSTAT) {
    const st = await pgQuery(url, `SELECT calls, total_exec_time, rows, toplevel, wal_bytes, regexp_replace(left(query, 110), '\\s+', ' ', 'g') AS q
      FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) ORDER BY total_exec_time DESC LIMIT 14`);
    for (const r of st) lines.push(`    ${(r.total_exec_time * 1000 / exchanges).toFixed(1).padStart(6)} µs/exch ${String(r.calls).padStart(7)} calls ${(r.total_exec_time * 1000 / Math.max(1, r.calls)).toFixed(1).padStart(7)} µs/call ${r.toplevel ? 'top ' : 'nest'} ${r.q}`);
    const fn = await pgQuery(url, 'SELECT funcname, calls, total_time, self_time FROM pg_stat_user_functions ORDER BY total_time DESC');
    for (const r of fn) lines.push(`    fn ${r.funcname}: ${r.calls} calls, total ${(r.total_time * 1000 / exchanges).toFixed(1)} µs/exch, self ${(r.self_time * 1000 / exchanges).toFixed(1)} µs/exch`);
  }
  return lines.join('\n');
}

async function startServer(server, n, run) {
  const data = join(dir, `data-${server}-${n}-${run}`);
  mkdirSync(data, { recursive: true });
  // rolecast logs (JSON lines at info) to a file, as dnsmasq does (--log-facility): a pipe this script does not
  // drain while perfdhcp runs would make the server's log writes wait on the benchmark.
  const logFile = join(data, 'rolecast.log');
  writeFileSync(logFile, '');
  const logFd = openSync(logFile, 'a');
  // BENCH_DHCP_PROF=DIR: a V8 CPU profile of each rolecast run (summarise with scripts/cpuprof-top.mjs).
  // BENCH_DHCP_NODE_ARGS: more node flags for rolecast (--trace-gc ...: diagnostics, not figures).
  const prof = [...(process.env.BENCH_DHCP_NODE_ARGS ? process.env.BENCH_DHCP_NODE_ARGS.split(' ') : []), ...(process.env.BENCH_DHCP_PROF ? ['--cpu-prof', `--cpu-prof-dir=${join(process.env.BENCH_DHCP_PROF, server)}`] : []),
    ...(process.env.BENCH_DHCP_PERF ? ['--perf-basic-prof'] : [])];
  if (server === 'rolecast-pg') {
    const cfg = join(data, 'rolecast.yaml');
    pgUrl = await pgDatabase(`bench_${n}_${run}`);
    writeFileSync(cfg, [`profilesDir: ${join(dir, `profiles-${n}`)}`, `dataDir: ${data}`, 'address: 10.0.0.1', 'user: root',
      `state:\n  backend: postgres\n  url: ${pgUrl}`, ''].join('\n'));
    return Object.assign(spawn('ip', ['netns', 'exec', S, process.execPath, ...prof, join(ROOT, 'bin/rolecast.js'), 'serve', '--config', cfg],
      { detached: true, stdio: ['ignore', logFd, 'ignore'], env: { ...process.env } }), { logFile });
  }
  if (server === 'rolecast' || server === 'rolecast-main' || server === 'rolecast-base') {
    // rolecast-main: DHCP on the main thread (dhcp.thread: off), for an A/B of DHCP's own thread.
    // rolecast-base: the checkout at BENCH_DHCP_BASE (built: dist and the native addons), for a same-run A/B of a change.
    const cfg = join(data, 'rolecast.yaml');
    writeFileSync(cfg, server === 'rolecast-main' ? 'dhcp:\n  thread: off\n' : '{}\n');
    const root = server === 'rolecast-base' ? process.env.BENCH_DHCP_BASE : ROOT;
    if (!root) throw new Error('rolecast-base needs BENCH_DHCP_BASE=DIR (a built checkout)');
    return Object.assign(spawn('ip', ['netns', 'exec', S, process.execPath, ...prof, join(root, 'bin/rolecast.js'), 'serve', '--config', cfg, '--address', '10.0.0.1', '--profiles', join(dir, `profiles-${n}`), '--data', data],
      { detached: true, stdio: ['ignore', logFd, 'ignore'], env: { ...process.env } }), { logFile });
  }
  // dnsmasq-boot: dnsmasq answering with what rolecast's OFFER/ACK carry for these requests (boot file and
  // next server, options 6, 12, 15, 43, 60, 66, 67: 14 options, not 8), to see what the answers' size costs the client.
  const boot = server === 'dnsmasq-boot' ? ['--dhcp-boot=undionly.kpxe,,10.0.0.1', '--dhcp-option-force=6,10.0.0.1', '--dhcp-option-force=15,dsas.example',
    '--dhcp-option-force=66,10.0.0.1', '--dhcp-option-force=67,undionly.kpxe', '--dhcp-option-force=60,PXEClient', '--dhcp-option-force=43,06:01:08:ff'] : [];
  return spawn('ip', ['netns', 'exec', S, 'dnsmasq', '-k', '--quiet-dhcp', '--no-ping', '--port=0', '--conf-file=/dev/null', '--pid-file=',
    '--dhcp-range=10.0.0.0,static,255.252.0.0,1h', `--dhcp-hostsfile=${join(dir, `hosts-${n}${boot.length ? '-named' : ''}`)}`, `--dhcp-leasefile=${join(data, 'dnsmasq.leases')}`,
    '--interface=v1', '--bind-interfaces', '--dhcp-lease-max=200000', `--log-facility=${join(data, 'dnsmasq.log')}`, ...boot], { detached: true, stdio: ['ignore', 'pipe', 'inherit'] });
}

try {
  for (const n of [S, C]) { ip('netns', 'add', n); ip('-n', n, 'link', 'set', 'lo', 'up'); }
  ip('-n', S, 'link', 'add', 'v1', 'type', 'veth', 'peer', 'name', 'v2', 'netns', C);
  ip('-n', S, 'addr', 'add', '10.0.0.1/14', 'dev', 'v1'); ip('-n', S, 'link', 'set', 'v1', 'up');
  ip('-n', C, 'addr', 'add', '10.3.250.1/14', 'dev', 'v2'); ip('-n', C, 'link', 'set', 'v2', 'up');
  const lines = [];
  for (const n of SIZES) {
    const prof = join(dir, `profiles-${n}`);
    mkdirSync(prof);
    const machines = writeProfiles(prof, Math.max(2, n));
    writeFileSync(join(dir, `macs-${n}`), `${machines.map((m) => m.mac).join('\n')}\n`);
    writeFileSync(join(dir, `hosts-${n}`), `${machines.map((m) => `${m.mac},${m.ip}`).join('\n')}\n`);
    writeFileSync(join(dir, `hosts-${n}-named`), `${machines.map((m) => `${m.mac},${m.ip},${m.host}`).join('\n')}\n`);
    // BENCH_DHCP_SERVERS=rolecast-pg,rolecast: only those (a quick A/B of one backend).
    const servers = process.env.BENCH_DHCP_SERVERS ? process.env.BENCH_DHCP_SERVERS.split(',')
      : process.env.BENCH_DHCP_PG === '0' ? ['rolecast', 'dnsmasq-boot', 'dnsmasq'] : ['rolecast', 'rolecast-pg', 'dnsmasq-boot', 'dnsmasq'];
    const res = Object.fromEntries(servers.map((x) => [x, []]));
    for (let run = 0; run < RUNS; run++) {
      // Alternate which server goes first, so drift in the machine's load hits both alike.
      for (const server of run % 2 ? [...servers].reverse() : servers) {
        const p = await startServer(server, n, run);
        procs.push(p);
        await waitReady(p, server);
        // Start-up is not the exchanges' cost: the 1000/s window opens once the server is idle (it counted
        // rolecast's start-up work that went on after "rolecast serving", ~1,000 µs an exchange).
        const settled = await settle(p.pid);
        // CPU per exchange at 1000/s too: the same work per turn for every server (flat out, a slower one
        // also gets fewer requests per turn to spread its per-turn costs over).
        const c0 = cpuOf(p.pid);
        const th0 = THREADS ? cpuByThread(p.pid) : {};
        const g0 = server === 'rolecast-pg' ? pgCpu() : 0;
        // BENCH_DHCP_PGSTAT=1000: PostgreSQL's statements during the 1000/s phase instead of the flat-out one.
        const stat1000 = server === 'rolecast-pg' && process.env.BENCH_DHCP_PGSTAT === '1000';
        const wal1000 = stat1000 ? await pgMark(pgUrl) : 0n;
        // BENCH_DHCP_PERF with BENCH_DHCP_FLATOUT=0: the perf record is of the 1000/s window (its per-turn costs).
        const perf1000 = process.env.BENCH_DHCP_PERF && process.env.BENCH_DHCP_FLATOUT === '0' ? spawn('perf', ['record', '-g', '-F', '2000', '-o', join(process.env.BENCH_DHCP_PERF, `${server}-${n}-${run}-1000.data`),
          '-p', String(p.pid), '--', 'sleep', String(SECONDS)], { stdio: 'ignore' }) : undefined;
        const at1000 = perfdhcp(join(dir, `macs-${n}`), 1000, SECONDS, true);
        if (perf1000 && perf1000.exitCode === null) await new Promise((r) => perf1000.once('close', r));
        if (stat1000) console.log(`    at 1000/s:\n${await pgReport(pgUrl, wal1000, Math.max(1, at1000.sent))}`);
        const c1 = cpuOf(p.pid);
        at1000.cpuUs = ((c1.all - c0.all) / Math.max(1, at1000.sent)) * 1e6;
        at1000.clientUs = (at1000.clientCpu / Math.max(1, at1000.sent)) * 1e6;
        at1000.pgUs = server === 'rolecast-pg' ? ((pgCpu() - g0) / Math.max(1, at1000.sent)) * 1e6 : 0;
        const th1 = THREADS ? cpuByThread(p.pid) : {};
        const cpu0 = cpuOf(p.pid);
        const wal0 = server === 'rolecast-pg' && process.env.BENCH_DHCP_PGSTAT !== '1000' ? await pgMark(pgUrl) : 0n;
        const pg0 = server === 'rolecast-pg' ? pgCpu() : 0;
        const perf = process.env.BENCH_DHCP_PERF && process.env.BENCH_DHCP_FLATOUT !== '0' ? spawn('perf', ['record', '-g', '-F', '2000', '-o', join(process.env.BENCH_DHCP_PERF, `${server}-${n}-${run}.data`),
          '-p', String(p.pid), '--', 'sleep', String(SECONDS)], { stdio: 'ignore' }) : undefined;
        // BENCH_DHCP_FLATOUT=0: the 1000/s run only (a profile of it alone).
        const max = process.env.BENCH_DHCP_FLATOUT === '0' ? { rate: 0, drops: 0, sent: 0, p50: NaN, p99: NaN, clientCpu: NaN, boxBusy: NaN, boxTotal: NaN } : perfdhcp(join(dir, `macs-${n}`), 50000, SECONDS, false);
        if (perf && perf.exitCode === null) await new Promise((r) => perf.once('close', r));
        // CPU per exchange: what one DORA costs the server, much less sensitive than the rate to the other
        // work on a shared machine (the rate also counts time the server spent waiting for a core).
        const cpu1 = cpuOf(p.pid);
        const th2 = THREADS ? cpuByThread(p.pid) : {};
        const per = (x) => (x / Math.max(1, max.rate * SECONDS)) * 1e6;
        max.cpuUs = per(cpu1.all - cpu0.all);
        max.userUs = per(cpu1.user - cpu0.user);
        max.sysUs = per(cpu1.sys - cpu0.sys);
        // The client's side of the same exchanges (perfdhcp, both its threads), and how busy the whole box was.
        max.clientUs = per(max.clientCpu);
        max.boxUs = per(max.boxBusy);
        max.boxShare = max.boxBusy / max.boxTotal;
        // BENCH_DHCP_PIN=1: one more flat-out run with the client on core 0 and the server (every thread) on
        // core 1, for every server alike: how the same pair does when neither takes the other's core.
        let pinned;
        if (PIN && process.env.BENCH_DHCP_FLATOUT !== '0') {
          for (const q of processTree(p.pid)) spawnSync('taskset', ['-a', '-p', '-c', '1', String(q)], { stdio: 'ignore' });
          const k0 = cpuOf(p.pid);
          pinned = perfdhcp(join(dir, `macs-${n}`), 50000, SECONDS, false, '0');
          const k1 = cpuOf(p.pid);
          const perP = (x) => (x / Math.max(1, pinned.rate * SECONDS)) * 1e6;
          pinned.cpuUs = perP(k1.all - k0.all);
          pinned.clientUs = perP(pinned.clientCpu);
          pinned.boxShare = pinned.boxBusy / pinned.boxTotal;
        }
        // With the postgres backend the database works for each exchange too: counted beside it.
        max.pgUs = server === 'rolecast-pg' ? ((pgCpu() - pg0) / Math.max(1, max.rate * SECONDS)) * 1e6 : 0;
        const pgDetail = server === 'rolecast-pg' && process.env.BENCH_DHCP_PGSTAT !== '1000' ? await pgReport(pgUrl, wal0, Math.max(1, max.rate * SECONDS)) : '';
        stop(p);
        await new Promise((r) => (p.exitCode !== null ? r() : p.once('close', r)));
        res[server].push({ at1000, max, pinned });
        console.log(`  ${n} machines, run ${run + 1}, ${server}: at 1000/s ${at1000.drops} drops of ${at1000.sent}, OFFER p50 ${at1000.p50.toFixed(2)} ms p99 ${at1000.p99.toFixed(2)} ms, ${at1000.cpuUs.toFixed(0)} µs CPU per exchange${at1000.pgUs ? ` + ${at1000.pgUs.toFixed(0)} µs in PostgreSQL` : ''}; flat out ${max.rate.toFixed(0)}/s, ${max.cpuUs.toFixed(0)} µs CPU per exchange (user ${max.userUs.toFixed(0)}, system ${max.sysUs.toFixed(0)})${max.pgUs ? ` + ${max.pgUs.toFixed(0)} µs in PostgreSQL` : ''}`);
        console.log(`    client (perfdhcp) CPU per exchange: at 1000/s ${at1000.clientUs.toFixed(0)} µs, flat out ${max.clientUs.toFixed(0)} µs; box busy flat out ${(max.boxShare * 100).toFixed(0)}% of ${CORES} cores, ${max.boxUs.toFixed(0)} µs per exchange in all`);
        if (pinned) console.log(`    pinned (client core 0, server core 1): flat out ${pinned.rate.toFixed(0)}/s, server ${pinned.cpuUs.toFixed(0)} µs, client ${pinned.clientUs.toFixed(0)} µs CPU per exchange, box busy ${(pinned.boxShare * 100).toFixed(0)}%`);
        if (pgDetail) console.log(pgDetail);
        if (THREADS) console.log(`    OFFERs at 1000/s: ${at1000.slow}`);
        if (settled.ms > 600) console.log(`    (idle after ${settled.ms} ms and ${settled.cpuMs.toFixed(0)} ms CPU of start-up work)`);
        if (THREADS) console.log(`    µs per exchange by thread at 1000/s: ${threadDelta(th0, th1, at1000.sent)}\n    flat out: ${threadDelta(th1, th2, max.rate * SECONDS)}`);
      }
    }
    const m = (s, f) => median(res[s].map(f));
    const line = !res.dnsmasq || !res.rolecast ? '' : `${n} machines (median of ${RUNS}): flat out rolecast ${m('rolecast', (r) => r.max.rate).toFixed(0)}/s vs dnsmasq ${m('dnsmasq', (r) => r.max.rate).toFixed(0)}/s = ${(m('rolecast', (r) => r.max.rate) / m('dnsmasq', (r) => r.max.rate)).toFixed(2)}x; `
      + `at 1000/s drops rolecast ${m('rolecast', (r) => r.at1000.drops)} / dnsmasq ${m('dnsmasq', (r) => r.at1000.drops)} of ~${m('rolecast', (r) => r.at1000.sent)}, `
      + `OFFER p99 rolecast ${m('rolecast', (r) => r.at1000.p99).toFixed(2)} ms / dnsmasq ${m('dnsmasq', (r) => r.at1000.p99).toFixed(2)} ms; `
      + `CPU per exchange flat out rolecast ${m('rolecast', (r) => r.max.cpuUs).toFixed(0)} µs / dnsmasq ${m('dnsmasq', (r) => r.max.cpuUs).toFixed(0)} µs = ${(m('dnsmasq', (r) => r.max.cpuUs) / m('rolecast', (r) => r.max.cpuUs)).toFixed(2)}x `
      + `(user/system rolecast ${m('rolecast', (r) => r.max.userUs).toFixed(0)}/${m('rolecast', (r) => r.max.sysUs).toFixed(0)} µs, dnsmasq ${m('dnsmasq', (r) => r.max.userUs).toFixed(0)}/${m('dnsmasq', (r) => r.max.sysUs).toFixed(0)} µs)`;
    if (line) {
      lines.push(line);
      console.log(line);
      // The client's ceiling on this box: perfdhcp's own CPU per exchange bounds any server's rate at CORES /
      // client µs, even one that cost nothing. The lower of the two servers' medians: perfdhcp spends more per
      // completed exchange against a server that answers fewer of its requests (it keeps sending meanwhile).
      const client = Math.min(m('rolecast', (r) => r.max.clientUs), m('dnsmasq', (r) => r.max.clientUs));
      const ceiling = (CORES * 1e6) / client;
      const bound = `${n} machines: client (perfdhcp) CPU per exchange flat out ${client.toFixed(0)} µs (rolecast runs ${m('rolecast', (r) => r.max.clientUs).toFixed(0)}, dnsmasq runs ${m('dnsmasq', (r) => r.max.clientUs).toFixed(0)}), `
        + `box busy ${(m('rolecast', (r) => r.max.boxShare) * 100).toFixed(0)}% / ${(m('dnsmasq', (r) => r.max.boxShare) * 100).toFixed(0)}% of ${CORES} cores: `
        + `ceiling ${CORES} cores / ${client.toFixed(0)} µs = ${ceiling.toFixed(0)}/s for a server costing 0 µs, ${(ceiling / m('dnsmasq', (r) => r.max.rate)).toFixed(2)}x dnsmasq's rate in this run; `
        // With the box to client and server alone, rates go as 1 / (client + server µs): a server costing nothing
        // is at most (client + dnsmasq µs) / client times as fast as dnsmasq, whatever the box's other load did to this run.
        + `best ratio to dnsmasq with the box to themselves (${client.toFixed(0)} + ${m('dnsmasq', (r) => r.max.cpuUs).toFixed(0)}) / ${client.toFixed(0)} = ${((client + m('dnsmasq', (r) => r.max.cpuUs)) / client).toFixed(2)}x, rolecast's at its CPU ${((client + m('dnsmasq', (r) => r.max.cpuUs)) / (client + m('rolecast', (r) => r.max.cpuUs))).toFixed(2)}x; `
        + `with rolecast's ${m('rolecast', (r) => r.max.cpuUs).toFixed(0)} µs: ${((CORES * 1e6) / (client + m('rolecast', (r) => r.max.cpuUs))).toFixed(0)}/s, with dnsmasq's ${m('dnsmasq', (r) => r.max.cpuUs).toFixed(0)} µs: ${((CORES * 1e6) / (client + m('dnsmasq', (r) => r.max.cpuUs))).toFixed(0)}/s`;
      lines.push(bound);
      console.log(bound);
      if (PIN) {
        const pin = `${n} machines, pinned (client core 0, server core 1; median of ${RUNS}): flat out rolecast ${m('rolecast', (r) => r.pinned.rate).toFixed(0)}/s vs dnsmasq ${m('dnsmasq', (r) => r.pinned.rate).toFixed(0)}/s = ${(m('rolecast', (r) => r.pinned.rate) / m('dnsmasq', (r) => r.pinned.rate)).toFixed(2)}x; `
          + `server CPU per exchange ${m('rolecast', (r) => r.pinned.cpuUs).toFixed(0)} / ${m('dnsmasq', (r) => r.pinned.cpuUs).toFixed(0)} µs, client ${m('rolecast', (r) => r.pinned.clientUs).toFixed(0)} / ${m('dnsmasq', (r) => r.pinned.clientUs).toFixed(0)} µs`;
        lines.push(pin);
        console.log(pin);
      }
    }
    // The like-for-like peer: dnsmasq giving the same boot answers (a PXE server must), which perfdhcp
    // unpacks option by option; bare dnsmasq (8 options, no boot file) stays the issue's yardstick above.
    if (res['dnsmasq-boot'] && res.rolecast) {
      const bootLine = `${n} machines (median of ${RUNS}): same answers: flat out rolecast ${m('rolecast', (r) => r.max.rate).toFixed(0)}/s vs dnsmasq-boot ${m('dnsmasq-boot', (r) => r.max.rate).toFixed(0)}/s = ${(m('rolecast', (r) => r.max.rate) / m('dnsmasq-boot', (r) => r.max.rate)).toFixed(2)}x; `
        + `at 1000/s drops ${m('rolecast', (r) => r.at1000.drops)} / ${m('dnsmasq-boot', (r) => r.at1000.drops)}, OFFER p99 ${m('rolecast', (r) => r.at1000.p99).toFixed(2)} / ${m('dnsmasq-boot', (r) => r.at1000.p99).toFixed(2)} ms; `
        + `CPU per exchange flat out ${m('rolecast', (r) => r.max.cpuUs).toFixed(0)} / ${m('dnsmasq-boot', (r) => r.max.cpuUs).toFixed(0)} µs, client (perfdhcp) ${m('rolecast', (r) => r.max.clientUs).toFixed(0)} / ${m('dnsmasq-boot', (r) => r.max.clientUs).toFixed(0)} µs`;
      lines.push(bootLine);
      console.log(bootLine);
    }
    if (res['rolecast-main'] && res.rolecast) {
      const mainLine = `${n} machines (median of ${RUNS}): DHCP on its own thread ${m('rolecast', (r) => r.max.rate).toFixed(0)}/s vs main thread ${m('rolecast-main', (r) => r.max.rate).toFixed(0)}/s flat out; `
        + `OFFER p99 at 1000/s ${m('rolecast', (r) => r.at1000.p99).toFixed(2)} vs ${m('rolecast-main', (r) => r.at1000.p99).toFixed(2)} ms, drops ${m('rolecast', (r) => r.at1000.drops)} vs ${m('rolecast-main', (r) => r.at1000.drops)}; `
        + `CPU per exchange ${m('rolecast', (r) => r.max.cpuUs).toFixed(0)} vs ${m('rolecast-main', (r) => r.max.cpuUs).toFixed(0)} µs`;
      lines.push(mainLine);
      console.log(mainLine);
    }
    if (res['rolecast-base'] && res.rolecast) {
      const r = (s, f) => m(s, f).toFixed(0);
      const baseLine = `${n} machines (median of ${RUNS}): this checkout vs BENCH_DHCP_BASE flat out ${r('rolecast', (x) => x.max.rate)}/s vs ${r('rolecast-base', (x) => x.max.rate)}/s = ${(m('rolecast', (x) => x.max.rate) / m('rolecast-base', (x) => x.max.rate)).toFixed(2)}x; `
        + `CPU per exchange flat out ${r('rolecast', (x) => x.max.cpuUs)} vs ${r('rolecast-base', (x) => x.max.cpuUs)} µs, at 1000/s ${r('rolecast', (x) => x.at1000.cpuUs)} vs ${r('rolecast-base', (x) => x.at1000.cpuUs)} µs; `
        + `OFFER p99 at 1000/s ${m('rolecast', (x) => x.at1000.p99).toFixed(2)} vs ${m('rolecast-base', (x) => x.at1000.p99).toFixed(2)} ms, drops ${m('rolecast', (x) => x.at1000.drops)} vs ${m('rolecast-base', (x) => x.at1000.drops)}`;
      lines.push(baseLine);
      console.log(baseLine);
    }
    if (res['rolecast-pg'] && res.rolecast) {
      const pgLine = `${n} machines (median of ${RUNS}): rolecast postgres state ${m('rolecast-pg', (r) => r.max.rate).toFixed(0)}/s vs file state ${m('rolecast', (r) => r.max.rate).toFixed(0)}/s = ${(m('rolecast-pg', (r) => r.max.rate) / m('rolecast', (r) => r.max.rate)).toFixed(2)}x (target >= 0.8); `
        + `at 1000/s drops postgres ${m('rolecast-pg', (r) => r.at1000.drops)} / file ${m('rolecast', (r) => r.at1000.drops)}, OFFER p99 postgres ${m('rolecast-pg', (r) => r.at1000.p99).toFixed(2)} ms; `
        + `CPU per exchange flat out postgres backend ${m('rolecast-pg', (r) => r.max.cpuUs).toFixed(0)} µs rolecast + ${m('rolecast-pg', (r) => r.max.pgUs).toFixed(0)} µs PostgreSQL / file ${m('rolecast', (r) => r.max.cpuUs).toFixed(0)} µs`;
      lines.push(pgLine);
      console.log(pgLine);
    }
  }
  console.log(`\nbench:dhcp summary (${(await import('node:os')).loadavg()[0].toFixed(1)} load average at the end)\n${lines.join('\n')}`);
} finally {
  for (const p of procs) stop(p);
  pgc?.destroySync();
  for (const n of [S, C]) spawnSync('ip', ['netns', 'delete', n]);
  if (!process.env.BENCH_KEEP) rmSync(dir, { recursive: true, force: true }); else console.log(`kept ${dir}`);
}
