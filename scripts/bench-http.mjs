#!/usr/bin/env node
// npm run bench:http — a DSAS-size boot storm: C concurrent clients each fetching a per-machine rootfs
// of S MB (the web role's base + the machine's generated files, composed on the fly) from rolecast, and
// the same number of fetches of the same base tar from nginx, same run, inside a private network namespace
// on loopback. Also a plain image file from rolecast, against nginx serving that same file. Reports
// throughput ratios and peak server memory (VmHWM). nginx serves hard links to rolecast's own files: the
// same inodes, so the same page cache. A copy is not the same file to the kernel: how a file was written
// decides its page cache folios (large writes, large folios on ext4 since Linux 6.16), and sendfile from
// a file written in tar's 10 KiB records costs the server ~15% and the clients ~8% more per GB than from
// one written in 1 MiB writes (CHANGELOG, tenth session). Defaults are scaled for a 2-core box:
// BENCH_CLIENTS=50 BENCH_MB=50; the full size is BENCH_CLIENTS=200 BENCH_MB=200. BENCH_ROUNDS (3): the median of that many rounds;
// the four kinds take turns first to last from round to round, and before the first round
// each is asked once (rolecast's first rootfs request hashes and indexes the base image: a one-off per
// image version, not a per-request cost).
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, cpSync, linkSync, mkdirSync, mkdtempSync, openSync, closeSync, writeSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { boxCpuMs, cpuGroups, kthreadsCpuMs } from './bench-cpu.mjs';
import { runInNetns } from './bench-netns.mjs';

const self = fileURLToPath(import.meta.url);
const ROOT = join(self, '../..');
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 50);
const MB = Number(process.env.BENCH_MB ?? 50);
const SERVER = '10.0.0.1';
const CLIENT = '10.0.0.101';

if (!process.argv.includes('--inner')) {
  if (process.getuid?.() !== 0) { console.error('bench:http needs root (own network namespace)'); process.exit(1); }
  // A machine's rootfs goes only to its own address (w101: 10.0.0.101): the clients speak from it, to a
  // server address of the lab's network, both on this namespace's loopback.
  process.exitCode = runInNetns('rcbh', self, [SERVER, CLIENT], ROOT);
} else {
  await inner();
}

function bigFile(path, mb) {
  const fd = openSync(path, 'w');
  const chunk = randomBytes(1024 * 1024);
  for (let i = 0; i < mb; i++) writeSync(fd, chunk);
  closeSync(fd);
}

/** CPU ms of this process's reaped children (clock ticks of 10 ms): /proc/self/stat cutime + cstime. */
function childrenCpuMs() {
  const f = readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ');
  return (Number(f[13]) + Number(f[14])) * 10;
}

function hwm(pid) {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

/**
 * One storm: CLIENTS curls at once. Returns MB/s over the whole storm, the share of the box's CPU left
 * idle meanwhile (a CPU-bound storm leaves none), the box's busy, softirq and steal time, and when the
 * transfers ended (s from the start, p10 and max): a server that serves its connections unevenly
 * finishes some early and leaves the box idle in a tail of few connections.
 */
/** Busy time of a boxCpuMs() reading, steal included. */
function busy(b) { return b.user + b.system + b.irq + b.softirq + b.steal; }

function storm(url) {
  const t = process.hrtime.bigint();
  const b0 = boxCpuMs();
  const k0 = kthreadsCpuMs();
  const urls = Array.from({ length: CLIENTS }, () => url).join('\n');
  const r = spawnSync('sh', ['-c', `xargs -P ${CLIENTS} -n 1 curl -sS -f --interface ${CLIENT} -o /dev/null -w '%{time_total}\\n'`], { input: urls, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`storm on ${url} failed: ${r.stderr.split('\n').slice(0, 3).join('; ')}`);
  const secs = Number(process.hrtime.bigint() - t) / 1e9;
  const b1 = boxCpuMs();
  const k1 = kthreadsCpuMs();
  const ends = r.stdout.trim().split('\n').map(Number).sort((a, b) => a - b);
  return {
    mbs: (CLIENTS * MB) / secs, idle: (b1.idle - b0.idle) / (b1.idle - b0.idle + busy(b1) - busy(b0)),
    busy: busy(b1) - busy(b0), kthreads: Object.fromEntries(Object.keys(k1).map((k) => [k, k1[k] - k0[k]])), softirq: b1.softirq - b0.softirq, steal: b1.steal - b0.steal, p10: ends[Math.floor(ends.length / 10)], max: ends.at(-1),
  };
}

async function inner() {
  const dir = mkdtempSync(join(tmpdir(), 'rolecast-bench-http-'));
  chmodSync(dir, 0o755); // nginx workers run as www-data
  const procs = [];
  const cleanups = [];
  try {
    cpSync(join(ROOT, 'profiles'), join(dir, 'profiles'), { recursive: true });
    mkdirSync(join(dir, 'images/build/rootfs'), { recursive: true });
    mkdirSync(join(dir, 'base/srv'), { recursive: true });
    bigFile(join(dir, 'base/srv/payload.bin'), MB);
    spawnSync('tar', ['-C', join(dir, 'base'), '-cf', join(dir, 'images/build/rootfs/web.tar'), '.']);
    bigFile(join(dir, 'images/build/vmlinuz'), MB);
    mkdirSync(join(dir, 'www'));
    linkSync(join(dir, 'images/build/rootfs/web.tar'), join(dir, 'www/static.tar'));
    linkSync(join(dir, 'images/build/vmlinuz'), join(dir, 'www/kernel'));
    // BENCH_HTTP_BULK_SLOTS=N: rolecast's http.bulkSlots (0: no gate); BENCH_HTTP_BULK_WHEN=pressure|always: http.bulkWhen.
    // Unset: the server's defaults (24 slots, closed only under TCP memory pressure).
    const BULK_SLOTS = (process.env.BENCH_HTTP_BULK_SLOTS ? `  bulkSlots: ${Number(process.env.BENCH_HTTP_BULK_SLOTS)}\n` : '')
      + (process.env.BENCH_HTTP_BULK_WHEN ? `  bulkWhen: ${process.env.BENCH_HTTP_BULK_WHEN}\n` : '');
    writeFileSync(join(dir, 'rc.yaml'), `profilesDir: ${dir}/profiles\ndataDir: ${dir}/data\nimagesDir: ${dir}/images\naddress: ${SERVER}\nlogLevel: warn\ndhcp:\n  mode: 'off'\ntftp:\n  enabled: false\nhttp:\n  host: ${SERVER}\n  port: 8080\n${BULK_SLOTS}`);
    writeFileSync(join(dir, 'nginx.conf'), `worker_processes auto; daemon off; pid ${dir}/nginx.pid; error_log ${dir}/nginx.err;\nevents { worker_connections 4096; }\nhttp { access_log off; sendfile on; server { listen ${SERVER}:8081; root ${dir}/www; } }\n`);
    const rc = spawn(process.execPath, [join(ROOT, 'bin/rolecast.js'), 'serve', '--config', join(dir, 'rc.yaml')], { stdio: 'ignore' });
    const ng = spawn('nginx', ['-c', join(dir, 'nginx.conf'), '-p', dir], { stdio: 'ignore' });
    procs.push(rc, ng);
    const cpu = cpuGroups({ rolecast: rc.pid, nginx: ng.pid }, cleanups, 'http');
    for (let i = 0; i < 100; i++) {
      if (spawnSync('curl', ['-sf', '-o', '/dev/null', `http://${SERVER}:8080/healthz`]).status === 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    // Rounds interleave the four kinds so a noisy moment hurts them alike; the median of ROUNDS each.
    const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
    const KINDS = ['rootfs', 'image', 'nginx', 'nginxImage'];
    const byKind = () => Object.fromEntries(KINDS.map((k) => [k, []]));
    const runs = byKind();
    // Server CPU per GB served (a private cpuacct cgroup per server: nginx's workers and rolecast's
    // sendfile threads included): the per-byte cost, which a loaded machine's wall clock hides.
    const perGb = byKind();
    // The clients' CPU per GB too (curl, reaped through xargs and sh into this process's cutime/cstime):
    // on a saturated box the clients take most of the CPU, which bounds what a cheaper server can gain.
    const clientGb = byKind();
    const idle = byKind(); // % of the box's CPU idle through the storm
    // The box's busy time per GB beyond the server's and the clients' groups (ksoftirqd, kworkers, other
    // work, less the host's steal), and its softirq and steal time per GB (softirq is counted inside the
    // groups too, where it ran in their tasks' context).
    const rest = byKind();
    const softirq = byKind();
    const steal = byKind();
    const ends = byKind(); // transfers' end, p10 to max, s
    const kthreads = byKind(); // the kernel's threads' CPU per GB: ksoftirqd + kworker + others
    const measure = (kind, server, url) => {
      const c0 = cpu(server);
      const k0 = childrenCpuMs();
      const st = storm(url);
      const gb = CLIENTS * MB / 1000;
      runs[kind].push(st.mbs);
      perGb[kind].push((cpu(server) - c0) / gb);
      clientGb[kind].push((childrenCpuMs() - k0) / gb);
      idle[kind].push(st.idle * 100);
      rest[kind].push((st.busy - st.steal) / gb - perGb[kind].at(-1) - clientGb[kind].at(-1));
      softirq[kind].push(st.softirq / gb);
      steal[kind].push(st.steal / gb);
      kthreads[kind].push(`${(st.kthreads.ksoftirqd / gb).toFixed(0)}+${(st.kthreads.kworker / gb).toFixed(0)}+${(st.kthreads.other / gb).toFixed(0)}`);
      ends[kind].push(`${st.p10.toFixed(1)}-${st.max.toFixed(1)}`);
    };
    // nginx's static.tar is rolecast's web.tar and its kernel rolecast's vmlinuz (hard links, above).
    const kinds = [['rootfs', 'rolecast', `http://${SERVER}:8080/rootfs/52:54:00:00:02:01.tar`], ['image', 'rolecast', `http://${SERVER}:8080/images/kernel`],
      ['nginx', 'nginx', `http://${SERVER}:8081/static.tar`], ['nginxImage', 'nginx', `http://${SERVER}:8081/kernel`]];
    for (const [, , url] of kinds) {
      if (spawnSync('curl', ['-sf', '--interface', CLIENT, '-o', '/dev/null', url]).status !== 0) throw new Error(`warm-up of ${url} failed`);
    }
    const line = (o, round) => KINDS.map((k) => (round === undefined ? o[k] : o[k][round]).toFixed(0)).join(' / ');
    console.log('  (per kind: rolecast rootfs composed / rolecast image / nginx the same tar / nginx the same image)');
    for (let round = 0; round < ROUNDS; round++) {
      const turn = [...kinds.slice(round % kinds.length), ...kinds.slice(0, round % kinds.length)];
      for (const [kind, server, url] of turn) measure(kind, server, url);
      console.log(`  round ${round + 1} (${turn.map((k) => k[0]).join(', ')}; load ${loadavg()[0].toFixed(1)}): MB/s ${line(runs, round)}; `
        + `server CPU ms/GB ${line(perGb, round)}; client CPU ms/GB ${line(clientGb, round)}; box idle % ${line(idle, round)}; `
        + `rest of the box ms/GB ${line(rest, round)} (softirq ${line(softirq, round)}, steal ${line(steal, round)}; kernel threads ksoftirqd+kworker+other ${KINDS.map((k) => kthreads[k][round]).join(' / ')}); ends s ${KINDS.map((k) => ends[k][round]).join(' / ')}`);
    }
    const median = (a) => [...a].sort((x, y) => x - y)[Math.floor((a.length - 1) / 2)];
    const med = (o) => Object.fromEntries(KINDS.map((k) => [k, median(o[k])]));
    const [mbs, srv, cli] = [med(runs), med(perGb), med(clientGb)];
    const health = spawnSync('curl', ['-sf', `http://${SERVER}:8080/healthz`], { encoding: 'utf8' }).stdout;
    console.log(`rolecast sendfile engine: ${JSON.parse(health).sendfile ? 'on' : 'off (streaming through Node)'}`);
    console.log(`${CLIENTS} clients x ${MB} MB (median of ${ROUNDS}, load ${loadavg().map((l) => l.toFixed(1)).join(' ')}): MB/s ${line(mbs)}`);
    console.log(`server CPU per GB (median): ${line(srv)} ms; nginx/rolecast CPU: composed ${(srv.nginx / srv.rootfs).toFixed(2)}, image ${(srv.nginxImage / srv.image).toFixed(2)} (> 1: rolecast cheaper)`);
    const total = (k) => srv[k] + cli[k];
    console.log(`client CPU per GB (median): ${line(cli)} ms; (server + client) nginx/rolecast: composed ${(total('nginx') / total('rootfs')).toFixed(2)}, image ${(total('nginxImage') / total('image')).toFixed(2)} (by the groups' accounts: softirq work is charged to whichever task it ran in, so a box-wide perf record can split it otherwise; the box's total decides the wall clock)`);
    console.log(`ratios: composed/nginx ${(mbs.rootfs / mbs.nginx).toFixed(2)} (target >= 1.0), image/nginx ${(mbs.image / mbs.nginxImage).toFixed(2)} (target >= 1.2); rolecast peak RSS ${hwm(rc.pid).toFixed(0)} MB`);
  } finally {
    for (const p of procs) p.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 500));
    for (const c of cleanups) c();
    rmSync(dir, { recursive: true, force: true });
  }
}
