#!/usr/bin/env node
// npm run bench:storm — a boot storm: N simulated machines (default 300), each in its own network namespace
// on one bridge, start within BENCH_STORM_SPREAD seconds (5) and each does what a PXE boot asks of the
// servers: DHCP (busybox udhcpc), the iPXE loader over TFTP (curl, blksize 1468), its iPXE script over HTTP,
// then the kernel, the initrd and its rootfs (a role image of BENCH_STORM_ROOTFS_MB, default 100) named in
// that script (scripts/bench-storm-client.mjs). Against rolecast and against dnsmasq (DHCP, TFTP) + nginx
// (HTTP) serving the same files, in the same run, BENCH_RUNS times (1) with the order of the two sides
// alternating (BENCH_STORM_FIRST=peer to start with the peer pair). A lone boot on each first is the
// yardstick. Reports completions and p50/p99 per stage, the servers' CPU, the load; the target is N/N,
// p99 <= 2x a lone boot, faster than the peer pair.
//
// The same storm for both sides: every client is started and set up before the storm and waits on its
// stdin; the harness (at a raised priority while it does so) writes each its "go" at its moment. The
// spread the clients really started over is measured (their own clocks) and printed; a storm whose
// spread exceeds the asked one is marked UNFAIR and the bench exits non-zero.
//
// The peer pair: dnsmasq -k --quiet-dhcp with the same N reservations (a dhcp-hostsfile) and --tftp-max
// raised to 1000 (its default of 50 stalls a storm: FIELD.md), nginx (2 workers, sendfile) serving the
// script rolecast rendered for the first machine to every machine, the kernel and initrd, and the role's
// rootfs tar to every machine (rolecast composes each machine's own: the role image + its generated files).
//
// Every namespace is removed on exit, also on failure and on Ctrl-C; processes are ended by PID.
import { spawn, spawnSync } from 'node:child_process';
import * as requireFs from 'node:fs';
import { chmodSync, copyFileSync, linkSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { getPriority, loadavg, setPriority, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { CLIENT, STAGES, UDHCPC, parseReport } from './bench-storm-client.mjs';

const ROOT = resolve(fileURLToPath(import.meta.url), '../..');
if (process.getuid?.() !== 0) { console.error('bench:storm needs root (network namespaces)'); process.exit(1); }
const { writeProfiles } = await import(join(ROOT, 'scripts/bench-profiles.mjs'));
const { boxCpuMs, kthreadsCpuMs, processTree } = await import(join(ROOT, 'scripts/bench-cpu.mjs'));
const { buildInitramfs } = await import(join(ROOT, 'src/images/initramfs.ts'));

const N = Number(process.env.BENCH_STORM_N ?? 300);
const ROOTFS_MB = Number(process.env.BENCH_STORM_ROOTFS_MB ?? 100);
const SPREAD_S = Number(process.env.BENCH_STORM_SPREAD ?? 5);
const RUNS = Number(process.env.BENCH_RUNS ?? 1);
const PEER_FIRST = process.env.BENCH_STORM_FIRST === 'peer';
const WARM = Number(process.env.BENCH_STORM_WARM ?? 0);
const SETTLE = Number(process.env.BENCH_STORM_SETTLE ?? 0);
const SERVER = '10.0.0.1';
const TAG = `${process.env.ROLECAST_NS_PREFIX ?? ''}rcst${process.pid}`;
const SNS = `${TAG}s`;
const cns = (i) => `${TAG}c${i}`;
const dir = mkdtempSync(join(tmpdir(), 'rolecast-bench-storm-'));
const procs = new Set();
let unfair = 0;

// ---- CPU groups: the servers in one, the clients in another, the harness in a third ----
// With sched_autogroup (Debian's default) every session is its own scheduling group, and each client
// (detached: a session of its own) got as much CPU as the whole server when all were runnable: rolecast
// one share against 300, dnsmasq and nginx one each. In cpu cgroups autogroup does not apply: servers
// and clients split a saturated box evenly, as a server and its clients on different machines would not
// take each other's cores, and within each group nice values count (rolecast's DHCP thread).
const CG = '/sys/fs/cgroup/cpu';
// The same groups under cpuacct (cgroup v1 mounts it apart here), to count each group's CPU: the kernel's
// network work done in a task's context (a sender's transmit running its clients' receive and their ACKs)
// is charged to that task, so the servers' own figure alone does not compare two servers.
const ACCT = '/sys/fs/cgroup/cpuacct';
const groups = {};
const acct = {};
function makeGroups() {
  for (const [name, shares] of [['server', 1024], ['clients', 1024], ['harness', 10240]]) {
    const g = join(CG, `${TAG}-${name}`);
    try { mkdirSync(g); writeFileSync(join(g, 'cpu.shares'), String(shares)); groups[name] = g; } catch { /* no cpu controller: say so below */ }
    const a = join(ACCT, `${TAG}-${name}`);
    try { mkdirSync(a); acct[name] = a; } catch { /* no cpuacct: group CPU not reported */ }
  }
  if (groups.harness) writeFileSync(join(groups.harness, 'cgroup.procs'), String(process.pid));
  if (acct.harness) writeFileSync(join(acct.harness, 'cgroup.procs'), String(process.pid));
  return Object.keys(groups).length === 3;
}
/** `pid` and (tree) its descendants now; what it starts later inherits the group. */
function intoGroup(name, pid, tree = true) {
  if (!pid) return;
  for (const g of [groups[name], acct[name]]) {
    if (!g) continue;
    for (const p of tree ? processTree(pid) : [pid]) { try { writeFileSync(join(g, 'cgroup.procs'), String(p)); } catch { /* gone */ } }
  }
}
/** CPU ms of a group's tasks so far (cpuacct.usage), or NaN without cpuacct. */
function groupCpu(name) {
  try { return Number(requireFs.readFileSync(join(acct[name], 'cpuacct.usage'), 'utf8')) / 1e6; } catch { return NaN; }
}
function removeGroups() {
  for (const root of [CG, ACCT]) { try { writeFileSync(join(root, 'cgroup.procs'), String(process.pid)); } catch { /* not moved */ } }
  // Killed processes leave their group a moment later: wait for them (synchronously: this runs at exit too).
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (const set of [groups, acct]) {
    for (const [name, g] of Object.entries(set)) {
      for (let i = 0; i < 100; i++) {
        try { requireFs.rmdirSync(g); delete set[name]; break; } catch { Atomics.wait(pause, 0, 0, 50); }
      }
    }
  }
}

// ---- namespaces: created in two `ip -batch` calls, removed the same way, whatever happens ----
let made = [];
function ipBatch(lines, prefix = []) {
  const r = spawnSync('ip', [...prefix, '-force', '-batch', '-'], { input: lines.join('\n') + '\n', encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ip ${prefix.join(' ')} -batch: ${r.stderr.split('\n').slice(0, 3).join('; ')}`);
}
function cleanup() {
  for (const p of procs) { try { process.kill(-p.pid, 'SIGKILL'); } catch { /* gone */ } }
  procs.clear();
  if (made.length) spawnSync('ip', ['-force', '-batch', '-'], { input: made.map((n) => `netns delete ${n}`).join('\n') + '\n', stdio: ['pipe', 'ignore', 'ignore'] });
  made = [];
  removeGroups();
  rmSync(dir, { recursive: true, force: true });
}
process.on('exit', cleanup);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => { cleanup(); process.exit(130); });

/** The bridge in the server's namespace, and each machine's veth peer named eth0 with its MAC already set. */
function makeNetwork(machines) {
  const names = [SNS, ...machines.map((_, i) => cns(i))];
  made = names;
  ipBatch(names.map((x) => `netns add ${x}`));
  const inServer = ['link set lo up', 'link add br0 type bridge', `addr add ${SERVER}/14 dev br0`, 'link set br0 up'];
  machines.forEach((m, i) => inServer.push(`link add v${i} type veth peer name eth0 address ${m.mac} netns ${cns(i)}`, `link set v${i} master br0 up`));
  ipBatch(inServer, ['-n', SNS]);
}

function track(p) {
  procs.add(p);
  p.on('exit', () => procs.delete(p));
  return p;
}
const inNs = (ns, cmd, args, opts = {}) => track(spawn('ip', ['netns', 'exec', ns, cmd, ...args], { stdio: 'pipe', detached: true, ...opts }));
const stop = async (p) => {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const gone = new Promise((r) => p.once('exit', r));
  try { process.kill(-p.pid, 'SIGTERM'); } catch { /* gone */ }
  await Promise.race([gone, new Promise((r) => setTimeout(r, 5000))]);
  try { process.kill(-p.pid, 'SIGKILL'); } catch { /* gone */ }
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function until(what, fn, ms = 60_000) {
  const end = Date.now() + ms;
  while (Date.now() < end) { if (await fn()) return; await sleep(200); }
  throw new Error(`timed out waiting for ${what}`);
}
const curlOk = (url) => new Promise((r) => {
  const p = inNs(SNS, 'curl', ['-sf', '-o', '/dev/null', url], { stdio: 'ignore' });
  p.on('exit', (code) => r(code === 0));
});

/**
 * Boot machines `idx` with these start delays (s): every client is spawned and set up first; once all
 * say ready, each gets its "go" at its delay. Resolves with one record per machine (bench-storm-client.mjs).
 */
async function storm(idx, machines, delays) {
  const t = performance.now();
  const clients = idx.map((i) => {
    // --norc: bash whose stdin is a socket (Node's stdio pipes are socketpairs) takes itself for an rsh
    // session and reads ~/.bashrc, which can take seconds per client on a loaded box.
    const p = inNs(cns(i), 'bash', ['--norc', '--noprofile', '-c', CLIENT], { env: { PATH: process.env.PATH, MAC: machines[i].mac, DIR: dir, SERVER } });
    const c = { p, out: '', ready: undefined, done: undefined };
    let said = false;
    c.ready = new Promise((ok) => {
      // Once: this handler ran again for every later line of every client (start, dhcp, curl's), and each
      // time walked all of /proc (processTree, ~1000 processes mid-storm) on the harness's thread: 300
      // clients' lines during the wave held the "go" timers back and stretched a 5 s wave to 16-22 s.
      // A waiting client is its bash alone (`ip netns exec` execs it; its `ip -b` is done), and what it
      // starts later inherits the group: no /proc walk at all.
      p.stdout.on('data', (d) => { c.out += d; if (!said && c.out.includes('ready\n')) { said = true; intoGroup('clients', p.pid, false); ok(true); } });
      p.on('close', () => ok(false));
    });
    p.stderr.resume();
    c.done = new Promise((ok) => p.on('close', ok)); // 'close', not 'exit': the last line may still be in the pipe at exit
    return c;
  });
  // A timer cleared once all are ready: left running, it kept the bench (and the bench lock) alive for
  // 5 minutes after its last storm.
  let giveUp;
  const ready = await Promise.race([Promise.all(clients.map((c) => c.ready)), new Promise((r) => { giveUp = setTimeout(r, 300_000); })]);
  clearTimeout(giveUp);
  if (!ready?.every(Boolean)) {
    for (const c of clients) { try { process.kill(-c.p.pid, 'SIGKILL'); } catch { /* gone */ } }
    throw new Error(`${ready ? ready.filter((r) => !r).length : 'some'} clients did not get ready`);
  }
  // Go: from a raised priority, so a loaded box does not stretch the wave (the clients keep theirs).
  const prio = getPriority();
  try { setPriority(-10); } catch { /* not allowed: measured below anyway */ }
  const order = clients.map((c, k) => ({ c, at: delays[k] * 1000 })).sort((a, b) => a.at - b.at);
  const t0 = performance.now() + 100;
  for (const { c, at } of order) {
    const wait = t0 + at - performance.now();
    if (wait > 1) await sleep(wait);
    c.goAt = performance.timeOrigin + performance.now(); // epoch ms, the clock of the clients' $EPOCHREALTIME
    c.p.stdin.end('go\n');
  }
  try { setPriority(prio); } catch { /* as it was */ }
  const went = performance.now();
  const timers = clients.map((c) => setTimeout(() => { try { process.kill(-c.p.pid, 'SIGKILL'); } catch { /* gone */ } }, 900_000));
  await Promise.all(clients.map((c) => c.done));
  timers.forEach(clearTimeout);
  const recs = clients.map((c) => parseReport(c.out, c.goAt));
  recs.phases = { setup: t0 - 100 - t, go: went - t0, storm: performance.now() - t0 };
  return recs;
}

const pct = (a, q) => { const s = a.filter(Number.isFinite).sort((x, y) => x - y); return s.length ? s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)] : NaN; };
const fmt = (ms) => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(0)} ms`);

function summary(title, lone, recs, cost = {}) {
  const ok = recs.filter((r) => !r.failed);
  const starts = recs.map((r) => r.start).filter(Number.isFinite);
  const spread = (Math.max(...starts) - Math.min(...starts)) / 1000;
  const wakes = recs.map((r) => r.wake).filter(Number.isFinite);
  const fair = starts.length === recs.length && spread <= SPREAD_S;
  if (!fair) unfair++;
  const fails = {};
  for (const r of recs) if (r.failed) { const k = r.why ? `${r.failed} (${r.why})` : r.failed; fails[k] = (fails[k] ?? 0) + 1; }
  console.log(`${title}: ${ok.length}/${recs.length} booted; released over ${spread.toFixed(2)} s (asked ${SPREAD_S} s)${fair ? '' : ' UNFAIR: not the asked storm'}`
    + `${wakes.length ? `, clients awake ${fmt(pct(wakes, 0.5))} p50 / ${fmt(Math.max(...wakes))} max after their release` : ''}`
    + `${Object.keys(fails).length ? `; failed at ${JSON.stringify(fails)}` : ''}; lone boot ${fmt(lone.stages.total ?? NaN)}`);
  for (const s of [...STAGES, 'total']) {
    const v = ok.map((r) => r.stages[s]);
    // max: the stragglers (a TCP retransmission backing off) that p99 of 300 does not show.
    console.log(`  ${s.padEnd(7)} p50 ${fmt(pct(v, 0.5)).padStart(9)}  p99 ${fmt(pct(v, 0.99)).padStart(9)}  max ${fmt(v.length ? Math.max(...v) : NaN).padStart(9)}  (lone ${fmt(lone.stages[s] ?? NaN)})`);
  }
  return { ...cost, ok: ok.length, spread, fair, p50: pct(ok.map((r) => r.stages.total), 0.5), p99: pct(ok.map((r) => r.stages.total), 0.99), lone: lone.stages.total };
}

/**
 * BENCH_STORM_SAMPLE=1: where the server's threads are through the storm, from /proc every 10 ms: running
 * or waiting for a core (R), asleep (S: an event loop idle, or waiting on a lock), in the disk or a kernel
 * mutex (D), with the kernel function it sleeps in (wchan) and the top of its kernel stack. Node names no
 * thread (all "node"), so every thread is sampled and the busiest are printed: the main thread, the DHCP
 * thread, the TFTP and sendfile engines, libuv's pool. Each thread's runqueue wait (schedstat) says how long
 * it was ready to run but had no core.
 */
function sampleThread(pid) {
  if (!process.env.BENCH_STORM_SAMPLE || !pid) return () => undefined;
  const { readFileSync, readdirSync } = requireFs;
  const read = (tid, f) => { try { return readFileSync(`/proc/${pid}/task/${tid}/${f}`, 'utf8'); } catch { return ''; } };
  const tids = () => { try { return readdirSync(`/proc/${pid}/task`); } catch { return []; } };
  const sched = (tid) => read(tid, 'schedstat').split(' ').map(Number);
  const first = new Map(tids().map((t) => [t, sched(t)]));
  const counts = new Map(); // tid -> Map(state key -> samples)
  let n = 0;
  const timer = setInterval(() => {
    for (const tid of tids()) {
      const state = read(tid, 'stat').replace(/^.*\) /, '')[0];
      if (!state) continue;
      const top = state === 'R' ? '' : read(tid, 'stack').split('\n').map((l) => l.replace(/^\[<[0-9a-f]+>\] /, '').replace(/\+0x.*$/, '')).filter((f) => f && !/^(__schedule|schedule|schedule_.*|do_syscall_64|entry_SYSCALL.*|__x64_sys_.*|x64_sys_call)$/.test(f)).slice(0, 3).join(' < ');
      const key = `${state} ${state === 'R' ? '' : read(tid, 'wchan')}${top ? ` [${top}]` : ''}`;
      const m = counts.get(tid) ?? new Map();
      m.set(key, (m.get(key) ?? 0) + 1);
      counts.set(tid, m);
    }
    n++;
  }, 10);
  return () => {
    clearInterval(timer);
    const rows = [...counts.keys()].map((tid) => {
      const [c1 = 0, w1 = 0] = sched(tid);
      const [c0 = 0, w0 = 0] = first.get(tid) ?? [0, 0];
      return { tid, cpu: (c1 - c0) / 1e9, wait: (w1 - w0) / 1e9 };
    }).sort((x, y) => (Number(y.tid === String(pid)) - Number(x.tid === String(pid))) || y.cpu - x.cpu);
    console.log(`  server threads (${rows.length}; ${n} samples each), busiest first after the main thread:`);
    for (const r of rows.slice(0, 5)) {
      console.log(`   thread ${r.tid}${r.tid === String(pid) ? ' (main)' : ''}: ${r.cpu.toFixed(2)} s on a core, ${r.wait.toFixed(2)} s waiting for one`);
      const m = counts.get(r.tid);
      for (const [k, v] of [...m].sort((x, y) => y[1] - x[1]).slice(0, 4)) console.log(`    ${(100 * v / n).toFixed(1).padStart(5)}%  ${k}`);
    }
  };
}

/** CPU ms (user + system, every thread) of the servers and their children (nginx's workers) so far. */
function treeCpu(servers) {
  let ms = 0;
  for (const p of servers) {
    for (const pid of p.pid ? processTree(p.pid) : []) {
      try {
        const f = requireFs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
        ms += (Number(f[11]) + Number(f[12])) * 10; // utime, stime in USER_HZ (100) ticks
      } catch { /* gone */ }
    }
  }
  return ms;
}

/**
 * The whole box's CPU so far (/proc/stat, ms): per-process figures (treeCpu) charge the kernel's network work
 * (veth delivery, the bridge, the clients' receive path, ACKs) to whichever thread runs when it happens — a
 * sender's thread inside sendfile(2) does much of its clients' receiving — so the box-wide busy time, with
 * the same clients on both sides, is what tells the servers' real cost apart.
 */
function boxCpu() {
  // ksoftirqd: the kernel's softirq threads, network work deferred out of whoever raised it, charged to no group.
  return { ...boxCpuMs(), ksoftirqd: kthreadsCpuMs().ksoftirqd, servers: groupCpu('server'), clients: groupCpu('clients') };
}
function boxCpuDelta(a, b, n) {
  const d = Object.fromEntries(Object.keys(a).map((k) => [k, b[k] - a[k]]));
  const busy = d.user + d.system + d.irq + d.softirq;
  const per = (v) => (n && Number.isFinite(v) ? (v / n).toFixed(0) : '-');
  // The storm's network cost: the servers' group, the clients' group and ksoftirqd (everything else on
  // the box is other work: the harness, other processes).
  const storm = d.servers + d.clients + d.ksoftirqd;
  return { busy, storm, text: `box CPU ${(busy / 1000).toFixed(1)} s busy, ${per(busy)} ms per booted machine (user ${per(d.user)}, system ${per(d.system)}, softirq ${per(d.softirq + d.irq)}; idle ${(d.idle / 1000).toFixed(1)} s, steal ${(d.steal / 1000).toFixed(1)} s); `
    + `per machine: server group ${per(d.servers)}, client group ${per(d.clients)}, ksoftirqd ${per(d.ksoftirqd)}, sum ${per(storm)}, rest of the box ${per(busy - storm)} ms` };
}

/**
 * The bridge's own counters in the server's namespace (br0: what the servers' stack sent and received
 * through it). tx is every skb a server handed the bridge, a GSO super-packet counting once: bytes per
 * skb says how full the servers' sends were, and the per-skb work downstream (the bridge, the veths, the
 * clients' receive path and their ACKs) is paid per skb, not per byte. rx: the clients' ACKs and requests.
 */
function bridgeStats() {
  const r = spawnSync('ip', ['-n', SNS, '-s', '-j', 'link', 'show', 'br0'], { encoding: 'utf8' });
  try {
    const s = JSON.parse(r.stdout)[0].stats64;
    return { txBytes: s.tx.bytes, txPackets: s.tx.packets, rxBytes: s.rx.bytes, rxPackets: s.rx.packets };
  } catch { return undefined; }
}
/**
 * The servers' TCP losses (their namespace's /proc/net/snmp and netstat): segments retransmitted and
 * retransmission timeouts (an RTO doubles at each one in a row: a transfer that lost its retransmission
 * a few times waits tens of seconds, the storm's stragglers). softnet: packets the box's per-CPU backlog
 * dropped (veth delivery past net.core.netdev_max_backlog), box-wide.
 */
function tcpStats() {
  const r = spawnSync('ip', ['netns', 'exec', SNS, 'cat', '/proc/net/snmp', '/proc/net/netstat'], { encoding: 'utf8' });
  const out = {};
  const lines = r.stdout.split('\n');
  for (let i = 0; i + 1 < lines.length; i += 1) {
    const [k, ...names] = lines[i].split(' ');
    const [k2, ...values] = lines[i + 1].split(' ');
    if (k !== k2 || !k.endsWith(':') || values.some((v) => !/^-?\d+$/.test(v))) continue;
    names.forEach((n, j) => { out[`${k}${n}`] = Number(values[j]); });
  }
  let drops = 0;
  try {
    for (const l of requireFs.readFileSync('/proc/net/softnet_stat', 'utf8').trim().split('\n')) drops += parseInt(l.split(' ')[1], 16);
  } catch { /* not Linux */ }
  return { retrans: out['Tcp:RetransSegs'], timeouts: out['TcpExt:TCPTimeouts'], drops };
}
function tcpDelta(a, b) {
  return `TCP: ${b.retrans - a.retrans} segments retransmitted, ${b.timeouts - a.timeouts} retransmission timeouts; backlog drops ${b.drops - a.drops}`;
}
function bridgeDelta(a, b, n) {
  if (!a || !b) return 'bridge counters unreadable';
  const tx = b.txPackets - a.txPackets, txB = b.txBytes - a.txBytes, rx = b.rxPackets - a.rxPackets;
  return `bridge: servers sent ${(txB / 2 ** 30).toFixed(2)} GiB in ${(tx / 1000).toFixed(0)}k skbs (${(txB / Math.max(tx, 1) / 1024).toFixed(1)} KiB each, ${(tx / Math.max(n, 1) / 1000).toFixed(1)}k per machine), `
    + `received ${(rx / 1000).toFixed(0)}k (${(rx / Math.max(n, 1) / 1000).toFixed(1)}k per machine; ${(rx / Math.max(tx, 1)).toFixed(2)} per skb sent)`;
}

async function runServer(name, start, machines) {
  const servers = await start();
  for (const p of servers) intoGroup('server', p.pid);
  try {
    // The lone boot, twice: the first warms both servers' caches (page cache, rolecast's tar index).
    // BENCH_STORM_WARM=K: K more lone boots first (of the same machine, one after another), so the storm
    // meets a server that has served before (its code compiled, its heap grown, its caches full).
    let lone;
    for (let k = 0; k < 2 + WARM; k++) {
      [lone] = await storm([0], machines, [0]);
      if (lone.failed) throw new Error(`${name}: the lone boot failed at ${lone.failed}`);
    }
    // BENCH_STORM_SETTLE=S: wait S seconds before the storm, so work a server does after its start
    // (rolecast's background warm-ups: content hashes, API rows, route validators) is over.
    if (SETTLE > 0) await sleep(SETTLE * 1000);
    const idx = machines.map((_, i) => i);
    // Deterministic start times over 90% of the spread (a power-on wave, not one instant). A machine's boot
    // starts when the harness releases it (its "go"), and the spread checked is of those moments, on the
    // harness's clock: the clients' own start stamps came up to 1.2 s after their go at load 150-250 (their
    // bash waiting for a core), which made a 4.5 s wave 5.1-5.4 s and UNFAIR by a hair on either side at
    // random. That wait now counts in each machine's DHCP stage, and its p50/max is printed.
    const delays = idx.map((i) => ((i * 7919) % N) / N * SPREAD_S * 0.9);
    // BENCH_STORM_PCAP=DIR: DHCP on the bridge through each storm (DIR/<server>.pcap), to count what was asked and answered.
    const dump = process.env.BENCH_STORM_PCAP
      ? inNs(SNS, 'tcpdump', ['-i', 'br0', '-n', '-U', '-s', '400', '-w', join(resolve(process.env.BENCH_STORM_PCAP), `${name.replace(/\W+/g, '-')}-${Date.now()}.pcap`), 'udp port 67 or udp port 68'], { stdio: 'ignore' })
      : undefined;
    // BENCH_STORM_PERF=DIR: a box-wide `perf record -a -g` through each storm (DIR/<server>-<time>.data);
    // `perf report -i FILE --sort comm` says which processes and kernel threads the box's CPU went to.
    const perf = process.env.BENCH_STORM_PERF
      ? track(spawn('perf', ['record', '-a', '-g', '-F', '199', '-o', join(resolve(process.env.BENCH_STORM_PERF), `${name.replace(/\W+/g, '-')}-${Date.now()}.data`)], { stdio: 'ignore', detached: true }))
      : undefined;
    if (dump || perf) await sleep(500);
    const load = loadavg()[0];
    let peak = load;
    const loadTimer = setInterval(() => { peak = Math.max(peak, loadavg()[0]); }, 1000);
    const sampled = sampleThread(servers[0]?.pid);
    const cpu0 = treeCpu(servers);
    const box0 = boxCpu();
    const net0 = bridgeStats();
    const tcp0 = tcpStats();
    const recs = await storm(idx, machines, delays);
    const net1 = bridgeStats();
    const tcp1 = tcpStats();
    const cpu = treeCpu(servers) - cpu0;
    const box1 = boxCpu();
    clearInterval(loadTimer);
    sampled();
    if (dump) await stop(dump);
    if (perf) {
      const gone = new Promise((r) => perf.once('exit', r));
      try { process.kill(perf.pid, 'SIGINT'); } catch { /* gone */ }
      await Promise.race([gone, sleep(30_000)]);
      await stop(perf);
    }
    const booted = recs.filter((r) => !r.failed).length;
    const box = boxCpuDelta(box0, box1, booted);
    // rolecast's own account of its gate on large sends (http.bulkSlots / bulkWhen), from /metrics.
    let gate = '';
    if (name === 'rolecast') {
      const m = spawnSync('ip', ['netns', 'exec', SNS, 'curl', '-sf', `http://${SERVER}:8080/metrics`], { encoding: 'utf8' }).stdout ?? '';
      const val = (metric) => new RegExp(`^${metric} (\\S+)$`, 'm').exec(m)?.[1] ?? '-';
      gate = `; bulk gate: closed ${val('rolecast_http_bulk_closed_total')} times, overran ${val('rolecast_http_bulk_overran_total')}`;
    }
    return summary(`${name} (load ${load.toFixed(1)} → peak ${peak.toFixed(1)} → ${loadavg()[0].toFixed(1)}, clients set up in ${(recs.phases.setup / 1000).toFixed(1)} s, gone in ${(recs.phases.go / 1000).toFixed(1)} s, storm ${(recs.phases.storm / 1000).toFixed(1)} s from the first go to the last exit; `
      + `server CPU ${(cpu / 1000).toFixed(1)} s, ${booted ? (cpu / booted).toFixed(0) : '-'} ms per booted machine; ${box.text}; ${bridgeDelta(net0, net1, booted)}; ${tcpDelta(tcp0, tcp1)}${gate})`, lone, recs, { cpu: booted ? cpu / booted : NaN, box: booted ? box.busy / booted : NaN, storm: booted ? box.storm / booted : NaN });
  } finally {
    for (const p of servers) await stop(p);
  }
}

async function prepare(machines) {
  const build = join(dir, 'images', 'build');
  mkdirSync(join(build, 'rootfs'), { recursive: true });
  await buildInitramfs({ out: build });
  // The role image: a small root plus ROOTFS_MB of incompressible data, as a plain tar.
  const rootDir = join(dir, 'root');
  mkdirSync(join(rootDir, 'sbin'), { recursive: true });
  mkdirSync(join(rootDir, 'etc'));
  copyFileSync('/bin/busybox', join(rootDir, 'sbin', 'init'));
  spawnSync('sh', ['-c', `head -c ${ROOTFS_MB}M /dev/urandom > ${join(rootDir, 'payload.bin')}`]);
  spawnSync('tar', ['-C', rootDir, '-cf', join(build, 'rootfs', 'web.tar'), '.']);
  rmSync(rootDir, { recursive: true });
  for (const r of ['lb', 'db', 'file', 'test']) copyFileSync(join(build, 'rootfs', 'web.tar'), join(build, 'rootfs', `${r}.tar`));
  writeFileSync(join(dir, 'udhcpc.sh'), UDHCPC);
  chmodSync(join(dir, 'udhcpc.sh'), 0o755);
  mkdirSync(join(dir, 's'));
  chmodSync(dir, 0o755);
  // The peer pair's files: the kernel, the initrd, the role image; the script comes from rolecast.
  // Hard links to rolecast's own files, not copies: the same inodes, so the same page cache. How a file
  // was written decides its page cache folios (ext4 large folios, Linux 6.16+), and that alone moved
  // sendfile's CPU per GB by ~15% for the server and ~8% for the clients in bench:http (CHANGELOG, tenth
  // session): a copy made the peer's files cheaper to send than rolecast's tar-written rootfs.
  const www = join(dir, 'www');
  for (const sub of ['boot', 'images', 'rootfs']) mkdirSync(join(www, sub), { recursive: true });
  linkSync(join(build, 'vmlinuz'), join(www, 'images', 'kernel'));
  linkSync(join(build, 'initrd.img'), join(www, 'images', 'initrd'));
  linkSync(join(build, 'rootfs', 'web.tar'), join(www, 'rootfs', 'base.tar'));
  writeFileSync(join(dir, 'hosts'), machines.map((m) => `${m.mac},${m.ip}`).join('\n') + '\n');
  makeNetwork(machines);
  return www;
}

async function main() {
  const machines = writeProfiles(join(dir, 'profiles'), N + 2).slice(2); // web boxes (the first two are the lb pair)
  const www = await prepare(machines);
  if (!makeGroups()) console.log(`no cpu cgroups under ${CG}: clients and servers share the box by sched_autogroup (each client session weighs as much as a server)`);
  console.log(`${machines.length} machines in namespaces on one bridge; rootfs ${ROOTFS_MB} MiB; starts within ${SPREAD_S} s; ${RUNS} run(s); load ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);

  const startRolecast = async () => {
    const cfg = join(dir, 'rolecast.yaml');
    rmSync(join(dir, 'data'), { recursive: true, force: true }); // each start from the same empty state
    mkdirSync(join(dir, 'data'));
    // BENCH_STORM_LOG=FILE: rolecast's log at BENCH_STORM_LOGLEVEL (default info: one line per boot stage) kept in FILE.
    const logFile = process.env.BENCH_STORM_LOG ? resolve(process.env.BENCH_STORM_LOG) : undefined;
    writeFileSync(cfg, [`profilesDir: ${join(dir, 'profiles')}`, `dataDir: ${join(dir, 'data')}`, `imagesDir: ${join(dir, 'images')}`, `address: ${SERVER}`,
      `logLevel: ${logFile ? process.env.BENCH_STORM_LOGLEVEL ?? 'info' : 'warn'}`, 'user: root',
      // BENCH_STORM_UNICAST=off: every DHCP reply broadcast (the before of unicast replies); default auto.
      // BENCH_STORM_DHCP_THREAD=off: DHCP on the main thread (the before of DHCP's own thread); default auto.
      ...(process.env.BENCH_STORM_UNICAST || process.env.BENCH_STORM_DHCP_THREAD ? ['dhcp:'] : []),
      ...(process.env.BENCH_STORM_UNICAST ? [`  unicastReplies: ${process.env.BENCH_STORM_UNICAST}`] : []),
      ...(process.env.BENCH_STORM_DHCP_THREAD ? [`  thread: ${process.env.BENCH_STORM_DHCP_THREAD}`] : []),
      // BENCH_STORM_BULK_SLOTS=N: http.bulkSlots (0: no gate); BENCH_STORM_BULK_WHEN=pressure|always: http.bulkWhen.
      // Unset: the server's defaults (24 slots, closed only under TCP memory pressure).
      ...(process.env.BENCH_STORM_BULK_SLOTS || process.env.BENCH_STORM_BULK_WHEN ? ['http:'] : []),
      ...(process.env.BENCH_STORM_BULK_SLOTS ? [`  bulkSlots: ${Number(process.env.BENCH_STORM_BULK_SLOTS)}`] : []),
      ...(process.env.BENCH_STORM_BULK_WHEN ? [`  bulkWhen: ${process.env.BENCH_STORM_BULK_WHEN}`] : []), ''].join('\n'));
    // BENCH_STORM_PROF=DIR: a CPU profile of rolecast through the storm (scripts/cpuprof-top.mjs reads it).
    const prof = process.env.BENCH_STORM_PROF ? ['--cpu-prof', '--cpu-prof-dir', resolve(process.env.BENCH_STORM_PROF)] : [];
    // BENCH_STORM_NODE_FLAGS="...": node (V8) flags for rolecast's process, e.g. --min-semi-space-size=16.
    const nodeFlags = process.env.BENCH_STORM_NODE_FLAGS ? process.env.BENCH_STORM_NODE_FLAGS.split(/\s+/).filter(Boolean) : [];
    const p = inNs(SNS, process.execPath, [...nodeFlags, ...prof, join(ROOT, 'bin/rolecast.js'), 'serve', '--config', cfg], { cwd: ROOT, stdio: ['ignore', logFile ? openSync(logFile, 'a') : 'ignore', 'inherit'] });
    intoGroup('server', p.pid);
    await until('rolecast', () => curlOk(`http://${SERVER}:8080/healthz`));
    const got = spawnSync('ip', ['netns', 'exec', SNS, 'curl', '-sf', '-o', join(www, 'boot', 'script.ipxe'), `http://${SERVER}:8080/boot/${machines[0].mac}.ipxe`]);
    if (got.status !== 0) throw new Error('cannot fetch the first machine\'s iPXE script from rolecast');
    spawnSync('chmod', ['-R', 'a+rX', www]);
    return [p];
  };
  const startPeers = async () => {
    const conf = join(dir, 'nginx.conf');
    writeFileSync(conf, `daemon off; worker_processes 2; pid ${join(dir, 'nginx.pid')}; error_log ${join(dir, 'nginx.err')};
events { worker_connections 4096; }
http { access_log off; sendfile on; tcp_nopush on; default_type application/octet-stream;
  server { listen ${SERVER}:8080 backlog=4096; root ${www};
    location /boot/ { rewrite ^ /boot/script.ipxe break; }
    location /rootfs/ { rewrite ^ /rootfs/base.tar break; } } }
`);
    const nginx = inNs(SNS, 'nginx', ['-c', conf, '-p', dir], { stdio: 'ignore' });
    intoGroup('server', nginx.pid);
    const dnsmasq = inNs(SNS, 'dnsmasq', ['-k', '--quiet-dhcp', '--conf-file=/dev/null', '--port=0', '--interface=br0', '--bind-interfaces', '--user=root',
      `--dhcp-range=${SERVER},static,255.252.0.0,1h`, `--dhcp-hostsfile=${join(dir, 'hosts')}`, '--leasefile-ro', '--dhcp-lease-max=10000',
      '--enable-tftp', '--tftp-root=/usr/lib/ipxe', '--tftp-max=1000'], { stdio: 'ignore' });
    intoGroup('server', dnsmasq.pid);
    await until('nginx', () => curlOk(`http://${SERVER}:8080/images/kernel`));
    await sleep(500);
    return [nginx, dnsmasq];
  };
  // The peer serves the script rolecast renders for the first machine: fetch it once before any storm.
  if (PEER_FIRST) for (const p of await startRolecast()) await stop(p);

  const results = [];
  for (let run = 0; run < RUNS; run++) {
    const sides = [['rolecast', startRolecast], ['dnsmasq+nginx', startPeers]];
    if ((run % 2 === 1) !== PEER_FIRST) sides.reverse();
    console.log(`\n--- run ${run + 1}/${RUNS}: ${sides.map((s) => s[0]).join(', then ')} (load ${loadavg()[0].toFixed(1)}) ---`);
    const r = {};
    for (const [name, start] of sides) r[name] = await runServer(name, start, machines).catch((e) => { console.log(String(e)); return undefined; });
    results.push(r);
    const rc = r.rolecast;
    const peer = r['dnsmasq+nginx'];
    if (rc && peer) {
      console.log(`storm: rolecast ${rc.ok}/${machines.length}, p99 ${fmt(rc.p99)}, p99 / lone boot ${(rc.p99 / rc.lone).toFixed(2)} (target <= 2); `
        + `dnsmasq+nginx ${peer.ok}/${machines.length}, p99 ${fmt(peer.p99)}, p99 / lone boot ${(peer.p99 / peer.lone).toFixed(2)}; `
        + `rolecast/peer p99 time ${(rc.p99 / peer.p99).toFixed(2)}, p50 ${(rc.p50 / peer.p50).toFixed(2)} (< 1: rolecast faster); `
        + `CPU per machine rolecast/peer: server ${(rc.cpu / peer.cpu).toFixed(2)}, box ${(rc.box / peer.box).toFixed(2)}, server + clients + ksoftirqd ${(rc.storm / peer.storm).toFixed(2)}${rc.fair && peer.fair ? '' : ' [UNFAIR: a spread exceeded]'}`);
    }
  }
  const both = results.filter((r) => r.rolecast && r['dnsmasq+nginx']);
  if (both.length > 1) {
    const med = (a) => { const v = a.filter(Number.isFinite).sort((x, y) => x - y); return v.length ? (v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2) : NaN; };
    const ratios = (f) => both.map((r) => f(r.rolecast) / f(r['dnsmasq+nginx']));
    const line = (label, f) => `${label} ${med(ratios(f)).toFixed(2)} (${ratios(f).map((x) => x.toFixed(2)).join(' / ')})`;
    console.log(`\nmedian of ${both.length} runs, rolecast/peer: ${line('p99', (x) => x.p99)}; ${line('p50', (x) => x.p50)}; ${line('server CPU per machine', (x) => x.cpu)}; ${line('box CPU per machine', (x) => x.box)}; ${line('server + clients + ksoftirqd CPU per machine', (x) => x.storm)}`);
  }
  if (unfair) {
    console.log(`${unfair} storm(s) started over more than ${SPREAD_S} s: their figures are not the asked storm`);
    process.exitCode = 2;
  }
}

try {
  await main();
} finally {
  cleanup();
}
