#!/usr/bin/env node
// npm run bench:storm — a boot storm: N simulated machines (default 300), each in its own network namespace
// on one bridge, start within 5 s and each does what a PXE boot asks of the servers: DHCP (busybox udhcpc),
// the iPXE loader over TFTP (curl, blksize 1468), its iPXE script over HTTP, then the kernel, the initrd and
// its rootfs (a role image of BENCH_STORM_ROOTFS_MB, default 100) named in that script. Against rolecast and
// then against dnsmasq (DHCP, TFTP) + nginx (HTTP) serving the same files, in the same run. A lone boot on
// each first is the yardstick. Reports completions and p50/p99 per stage; the target is N/N, p99 <= 2x a
// lone boot, faster than the peer pair.
//
// The peer pair: dnsmasq -k --quiet-dhcp with the same N reservations (a dhcp-hostsfile) and --tftp-max
// raised to 1000 (its default of 50 stalls a storm: FIELD.md), nginx (2 workers, sendfile) serving the
// script rolecast rendered for the first machine to every machine, the kernel and initrd, and the role's
// rootfs tar to every machine (rolecast composes each machine's own: the role image + its generated files).
//
// Every namespace is removed on exit, also on failure and on Ctrl-C; processes are ended by PID.
import { spawn, spawnSync } from 'node:child_process';
import * as requireFs from 'node:fs';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(fileURLToPath(import.meta.url), '../..');
if (process.getuid?.() !== 0) { console.error('bench:storm needs root (network namespaces)'); process.exit(1); }
const { writeProfiles } = await import(join(ROOT, 'scripts/bench-profiles.mjs'));
const { processTree } = await import(join(ROOT, 'scripts/bench-cpu.mjs'));
const { buildInitramfs } = await import(join(ROOT, 'src/images/initramfs.ts'));

const N = Number(process.env.BENCH_STORM_N ?? 300);
const ROOTFS_MB = Number(process.env.BENCH_STORM_ROOTFS_MB ?? 100);
const SPREAD_S = 5;
const SERVER = '10.0.0.1';
const TAG = `${process.env.ROLECAST_NS_PREFIX ?? ''}rcst${process.pid}`;
const SNS = `${TAG}s`;
const cns = (i) => `${TAG}c${i}`;
const STAGES = ['dhcp', 'loader', 'script', 'kernel', 'initrd', 'rootfs'];
const dir = mkdtempSync(join(tmpdir(), 'rolecast-bench-storm-'));
const procs = new Set();

// ---- namespaces: created in three `ip -batch` calls, removed the same way, whatever happens ----
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
  rmSync(dir, { recursive: true, force: true });
}
process.on('exit', cleanup);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => { cleanup(); process.exit(130); });

function makeNetwork(n) {
  const names = [SNS, ...Array.from({ length: n }, (_, i) => cns(i))];
  made = names;
  ipBatch(names.map((x) => `netns add ${x}`));
  const inServer = ['link set lo up', 'link add br0 type bridge', `addr add ${SERVER}/14 dev br0`, 'link set br0 up'];
  for (let i = 0; i < n; i++) inServer.push(`link add v${i} type veth peer name eth0 netns ${cns(i)}`, `link set v${i} master br0 up`);
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

// ---- the simulated machine: one sh per namespace, one line per stage ----
const CLIENT = `
set -u
ip link set lo up; ip link set eth0 address "$MAC"; ip link set eth0 up
now() { date +%s%N; }
# Every client is started first and waits for its moment: START_AT (ms since the epoch) + its delay,
# so the wave's spread is the one asked for, not how long 300 process starts take on a loaded box.
sleep "$(awk -v t="$START_AT" -v d="$DELAY" -v n="$(now)" 'BEGIN { s = t / 1000 + d - n / 1e9; printf "%.3f", (s > 0 ? s : 0) }')"
echo "start $(now)"
busybox udhcpc -i eth0 -n -q -f -t 20 -T 1 -s "$DIR/udhcpc.sh" >/dev/null 2>&1 || { echo "fail dhcp"; exit 1; }
echo "dhcp $(now)"
curl -sf --tftp-blksize 1468 --max-time 120 -o /dev/null "tftp://${SERVER}/undionly.kpxe" || { echo "fail loader"; exit 1; }
echo "loader $(now)"
script=$(curl -sf --max-time 60 "http://${SERVER}:8080/boot/$MAC.ipxe") || { echo "fail script"; exit 1; }
echo "script $(now)"
kernel=$(echo "$script" | awk '$1 == "kernel" { for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) { print $i; exit } }')
initrd=$(echo "$script" | awk '$1 == "initrd" { for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) { print $i; exit } }')
url=$(echo "$script" | tr ' ' '\\n' | sed -n 's/^rolecast.url=//p' | head -n 1)
[ -n "$kernel" ] && [ -n "$initrd" ] && [ -n "$url" ] || { echo "fail parse"; exit 1; }
curl -sf --max-time 300 -o /dev/null "$kernel" || { echo "fail kernel"; exit 1; }
echo "kernel $(now)"
curl -sf --max-time 300 -o /dev/null "$initrd" || { echo "fail initrd"; exit 1; }
echo "initrd $(now)"
code=$(curl -s --max-time 600 -o /dev/null -w '%{http_code}' "$url/rootfs/$MAC.tar"); [ "$code" = 200 ] || { echo "fail rootfs"; echo "rootfs: HTTP $code" >&2; exit 1; }
echo "rootfs $(now)"
`;
const UDHCPC = `#!/bin/sh
[ "$1" = bound ] && ip addr add "$ip/\${mask:-24}" dev "$interface"
exit 0
`;

/** Boot machines `idx` (delays in s); resolves with one record per machine: stage durations (ms) or the failure. */
function storm(idx, machines, delays) {
  // Time to start every client process before the first one goes (~30 ms each on a loaded 2-core box).
  const startAt = Date.now() + Math.max(1000, idx.length * 40);
  return Promise.all(idx.map((i, k) => new Promise((res) => {
    const p = inNs(cns(i), 'sh', ['-c', CLIENT], { env: { ...process.env, START_AT: String(startAt), DELAY: String(delays[k]), MAC: machines[i].mac, DIR: dir } });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    const timer = setTimeout(() => { try { process.kill(-p.pid, 'SIGKILL'); } catch { /* gone */ } }, 900_000);
    p.on('close', () => { // 'close', not 'exit': the last stage's line may still be in the pipe at exit
      clearTimeout(timer);
      const at = Object.fromEntries(out.trim().split('\n').map((l) => l.split(' '))  .filter((w) => w.length === 2 && /^\d+$/.test(w[1])).map(([k, v]) => [k, Number(BigInt(v) / 1000n) / 1000]));
      const failed = /fail (\w+)/.exec(out)?.[1] ?? (at.rootfs === undefined ? 'killed' : undefined);
      const rec = { failed, why: err.trim().split('\n').pop(), start: at.start, stages: {} };
      let prev = at.start;
      for (const s of STAGES) { if (at[s] !== undefined) { rec.stages[s] = at[s] - prev; prev = at[s]; } }
      if (!failed) rec.stages.total = at.rootfs - at.start;
      res(rec);
    });
  })));
}

const pct = (a, q) => { const s = a.filter(Number.isFinite).sort((x, y) => x - y); return s.length ? s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)] : NaN; };
const fmt = (ms) => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(0)} ms`);

function summary(name, lone, recs) {
  const ok = recs.filter((r) => !r.failed);
  const starts = recs.map((r) => r.start).filter(Number.isFinite);
  const fails = {};
  for (const r of recs) if (r.failed) fails[r.failed] = (fails[r.failed] ?? 0) + 1;
  console.log(`${name}: ${ok.length}/${recs.length} booted (starts spread over ${((Math.max(...starts) - Math.min(...starts)) / 1000).toFixed(1)} s)${Object.keys(fails).length ? `; failed at ${JSON.stringify(fails)}` : ''}; lone boot ${fmt(lone.stages.total ?? NaN)}`);
  for (const s of [...STAGES, 'total']) {
    const v = ok.map((r) => r.stages[s]);
    console.log(`  ${s.padEnd(7)} p50 ${fmt(pct(v, 0.5)).padStart(9)}  p99 ${fmt(pct(v, 0.99)).padStart(9)}  (lone ${fmt(lone.stages[s] ?? NaN)})`);
  }
  return { ok: ok.length, p50: pct(ok.map((r) => r.stages.total), 0.5), p99: pct(ok.map((r) => r.stages.total), 0.99), lone: lone.stages.total };
}

/**
 * BENCH_STORM_SAMPLE=1: where the DHCP server's main thread is through the storm, from /proc every 10 ms:
 * running or waiting for a core (R), asleep (S: its event loop idle, or waiting on a lock), in the disk or
 * a kernel mutex (D), with the kernel function it sleeps in (wchan) and the top of its kernel stack.
 * Its runqueue wait (schedstat) says how long it was ready to run but had no core.
 */
function sampleThread(pid) {
  if (!process.env.BENCH_STORM_SAMPLE || !pid) return () => undefined;
  const { readFileSync } = requireFs;
  const read = (f) => { try { return readFileSync(`/proc/${pid}/task/${pid}/${f}`, 'utf8'); } catch { return ''; } };
  const sched = () => read('schedstat').split(' ').map(Number);
  const [cpu0, wait0] = sched();
  const counts = new Map();
  let n = 0;
  const timer = setInterval(() => {
    const state = read('stat').replace(/^.*\) /, '')[0];
    const top = read('stack').split('\n').map((l) => l.replace(/^\[<[0-9a-f]+>\] /, '').replace(/\+0x.*$/, '')).filter((f) => f && !/^(__schedule|schedule|schedule_.*|do_syscall_64|entry_SYSCALL.*|__x64_sys_.*|x64_sys_call)$/.test(f)).slice(0, 3).join(' < ');
    const key = `${state} ${state === 'R' ? '' : read('wchan')}${top ? ` [${top}]` : ''}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
    n++;
  }, 10);
  return () => {
    clearInterval(timer);
    const [cpu1, wait1] = sched();
    console.log(`  DHCP server thread ${pid}: ${((cpu1 - cpu0) / 1e9).toFixed(2)} s on a core, ${((wait1 - wait0) / 1e9).toFixed(2)} s waiting for one; ${n} samples:`);
    for (const [k, v] of [...counts].sort((a, b) => b[1] - a[1]).slice(0, 8)) console.log(`    ${(100 * v / n).toFixed(1).padStart(5)}%  ${k}`);
  };
}

/** CPU seconds (user + system, every thread) of the servers and their children (nginx's workers) so far. */
function treeCpu(servers) {
  const tick = 100; // USER_HZ
  let ms = 0;
  for (const p of servers) {
    for (const pid of p.pid ? processTree(p.pid) : []) {
      try {
        const f = requireFs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
        ms += (Number(f[11]) + Number(f[12])) * 1000 / tick; // utime, stime
      } catch { /* gone */ }
    }
  }
  return ms;
}

async function runServer(name, start, machines) {
  const servers = await start();
  try {
    // The lone boot, twice: the first warms both servers' caches (page cache, rolecast's tar index).
    let lone;
    for (let k = 0; k < 2; k++) {
      [lone] = await storm([0], machines, [0]);
      if (lone.failed) throw new Error(`${name}: the lone boot failed at ${lone.failed} (${lone.why})`);
      // Give the lone machine's address back: the storm's udhcpc asks again.
      spawnSync('ip', ['-n', cns(0), 'addr', 'flush', 'dev', 'eth0']);
    }
    const idx = machines.map((_, i) => i);
    // Deterministic start times spread over SPREAD_S (a power-on wave, not one instant).
    const delays = idx.map((i) => ((i * 7919) % 1000) / 1000 * SPREAD_S);
    const load = loadavg()[0];
    const t = Date.now();
    // BENCH_STORM_PCAP=DIR: DHCP on the bridge through each storm (DIR/<server>.pcap), to count what was asked and answered.
    const dump = process.env.BENCH_STORM_PCAP
      ? inNs(SNS, 'tcpdump', ['-i', 'br0', '-n', '-U', '-s', '400', '-w', join(resolve(process.env.BENCH_STORM_PCAP), `${name.replace(/\W+/g, '-')}.pcap`), 'udp port 67 or udp port 68'], { stdio: 'ignore' })
      : undefined;
    if (dump) await sleep(500);
    const sampled = sampleThread(servers[name === 'rolecast' ? 0 : 1]?.pid);
    const cpu0 = treeCpu(servers);
    const recs = await storm(idx, machines, delays);
    const cpu = treeCpu(servers) - cpu0;
    sampled();
    if (dump) await stop(dump);
    const res = summary(`${name} (load ${load.toFixed(1)} → ${loadavg()[0].toFixed(1)}, ${((Date.now() - t) / 1000).toFixed(1)} s wall, server CPU ${(cpu / 1000).toFixed(1)} s)`, lone, recs);
    for (let i = 0; i < machines.length; i++) spawnSync('ip', ['-n', cns(i), 'addr', 'flush', 'dev', 'eth0']);
    return res;
  } finally {
    for (const p of servers) await stop(p);
  }
}

async function main() {
  const machines = writeProfiles(join(dir, 'profiles'), N + 2).slice(2); // web boxes (the first two are the lb pair)
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
  mkdirSync(join(dir, 'data'));
  chmodSync(dir, 0o755);
  makeNetwork(machines.length);
  console.log(`${machines.length} machines in namespaces on one bridge; rootfs ${ROOTFS_MB} MiB; starts spread over ${SPREAD_S} s; load ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);

  const www = join(dir, 'www');
  for (const sub of ['boot', 'images', 'rootfs']) mkdirSync(join(www, sub), { recursive: true });
  const startRolecast = async () => {
    const cfg = join(dir, 'rolecast.yaml');
    // BENCH_STORM_LOG=FILE: rolecast's log at BENCH_STORM_LOGLEVEL (default info: one line per boot stage) kept in FILE.
    const logFile = process.env.BENCH_STORM_LOG ? resolve(process.env.BENCH_STORM_LOG) : undefined;
    writeFileSync(cfg, [`profilesDir: ${join(dir, 'profiles')}`, `dataDir: ${join(dir, 'data')}`, `imagesDir: ${join(dir, 'images')}`, `address: ${SERVER}`,
      `logLevel: ${logFile ? process.env.BENCH_STORM_LOGLEVEL ?? 'info' : 'warn'}`, 'user: root',
      // BENCH_STORM_UNICAST=off: every DHCP reply broadcast (the before of unicast replies); default auto.
      // BENCH_STORM_DHCP_THREAD=off: DHCP on the main thread (the before of DHCP's own thread); default auto.
      ...(process.env.BENCH_STORM_UNICAST || process.env.BENCH_STORM_DHCP_THREAD ? ['dhcp:'] : []),
      ...(process.env.BENCH_STORM_UNICAST ? [`  unicastReplies: ${process.env.BENCH_STORM_UNICAST}`] : []),
      ...(process.env.BENCH_STORM_DHCP_THREAD ? [`  thread: ${process.env.BENCH_STORM_DHCP_THREAD}`] : []), ''].join('\n'));
    // BENCH_STORM_PROF=DIR: a CPU profile of rolecast through the storm (scripts/cpuprof-top.mjs reads it).
    const prof = process.env.BENCH_STORM_PROF ? ['--cpu-prof', '--cpu-prof-dir', resolve(process.env.BENCH_STORM_PROF)] : [];
    const p = inNs(SNS, process.execPath, [...prof, join(ROOT, 'bin/rolecast.js'), 'serve', '--config', cfg], { cwd: ROOT, stdio: ['ignore', logFile ? openSync(logFile, 'a') : 'ignore', 'inherit'] });
    await until('rolecast', () => curlOk(`http://${SERVER}:8080/healthz`));
    const got = spawnSync('ip', ['netns', 'exec', SNS, 'curl', '-sf', '-o', join(www, 'boot', 'script.ipxe'), `http://${SERVER}:8080/boot/${machines[0].mac}.ipxe`]);
    if (got.status !== 0) throw new Error('cannot fetch the first machine\'s iPXE script from rolecast');
    return [p];
  };
  const rc = await runServer('rolecast', startRolecast, machines).catch((e) => { console.log(String(e)); return undefined; });

  // The peer pair's files: the script rolecast rendered for the first machine (saved while it ran),
  // the kernel, the initrd, the role image.
  copyFileSync(join(build, 'vmlinuz'), join(www, 'images', 'kernel'));
  copyFileSync(join(build, 'initrd.img'), join(www, 'images', 'initrd'));
  copyFileSync(join(build, 'rootfs', 'web.tar'), join(www, 'rootfs', 'base.tar'));
  spawnSync('chmod', ['-R', 'a+rX', www]);
  writeFileSync(join(dir, 'hosts'), machines.map((m) => `${m.mac},${m.ip}`).join('\n') + '\n');
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
    const dnsmasq = inNs(SNS, 'dnsmasq', ['-k', '--quiet-dhcp', '--conf-file=/dev/null', '--port=0', '--interface=br0', '--bind-interfaces', '--user=root',
      `--dhcp-range=${SERVER},static,255.252.0.0,1h`, `--dhcp-hostsfile=${join(dir, 'hosts')}`, '--leasefile-ro', '--dhcp-lease-max=10000',
      '--enable-tftp', '--tftp-root=/usr/lib/ipxe', '--tftp-max=1000'], { stdio: 'ignore' });
    await until('nginx', () => curlOk(`http://${SERVER}:8080/images/kernel`));
    await sleep(500);
    return [nginx, dnsmasq];
  };
  const peer = await runServer('dnsmasq+nginx', startPeers, machines).catch((e) => { console.log(String(e)); return undefined; });
  if (rc && peer) {
    console.log(`storm: rolecast ${rc.ok}/${machines.length}, p99 ${fmt(rc.p99)}, p99 / lone boot ${(rc.p99 / rc.lone).toFixed(2)} (target <= 2); `
      + `dnsmasq+nginx ${peer.ok}/${machines.length}, p99 ${fmt(peer.p99)}, p99 / lone boot ${(peer.p99 / peer.lone).toFixed(2)}; `
      + `rolecast/peer p99 time ${(rc.p99 / peer.p99).toFixed(2)}, p50 ${(rc.p50 / peer.p50).toFixed(2)} (< 1: rolecast faster)`);
  }
}

try {
  await main();
} finally {
  cleanup();
}
