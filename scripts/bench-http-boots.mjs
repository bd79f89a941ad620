#!/usr/bin/env node
// The HTTP server's cost per boot, without the bytes: N machines (BENCH_BOOTS_N, 300) each fetch what a
// PXE boot asks of rolecast over HTTP on one keep-alive connection from its own reserved address — its iPXE
// script, the kernel, the initrd and its composed rootfs (small files: BENCH_BOOTS_MB, 1 MiB each, so the
// per-request work shows, not the copying) — BENCH_BOOTS_C (8) machines at a time, in a private network
// namespace on loopback. Reports, per round (BENCH_ROUNDS, 3; median printed last), the rolecast process's
// CPU per boot and its main thread's, and the wall time. BENCH_BOOTS_PROF=DIR: a CPU profile of the server
// (scripts/cpuprof-top.mjs reads it); BENCH_BOOTS_NODE_FLAGS: more node flags for the server. The storm
// (bench:storm) measures the same requests under a saturated box, where one run's noise is larger than the
// per-request costs this isolates.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, openSync, writeSync, closeSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { writeProfiles } from './bench-profiles.mjs';
import { runInNetns } from './bench-netns.mjs';

const self = fileURLToPath(import.meta.url);
const ROOT = join(self, '../..');
const N = Number(process.env.BENCH_BOOTS_N ?? 300);
const C = Number(process.env.BENCH_BOOTS_C ?? 8);
const MB = Number(process.env.BENCH_BOOTS_MB ?? 1);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const SERVER = '10.0.0.1';

if (!process.argv.includes('--inner')) {
  if (process.getuid?.() !== 0) { console.error('bench-http-boots needs root (own network namespace)'); process.exit(1); }
  process.exitCode = runInNetns('rchb', self, [], ROOT);
} else {
  await inner();
}

function file(path, mb) {
  const fd = openSync(path, 'w');
  writeSync(fd, randomBytes(Math.round(mb * 1024 * 1024)));
  closeSync(fd);
}

/** utime + stime in ms of a task (/proc/<pid>/task/<tid>/stat or /proc/<pid>/stat). */
function cpuMs(path) {
  try {
    const f = readFileSync(path, 'utf8').split(') ')[1].split(' ');
    return (Number(f[11]) + Number(f[12])) * 10;
  } catch { return NaN; }
}

async function inner() {
  const dir = mkdtempSync(join(tmpdir(), 'rolecast-bench-boots-'));
  let rc;
  try {
    const machines = writeProfiles(join(dir, 'profiles'), N + 2).slice(2);
    spawnSync('ip', ['-batch', '-'], { input: [`addr add ${SERVER}/32 dev lo`, ...machines.map((m) => `addr add ${m.ip}/32 dev lo`)].join('\n') + '\n' });
    const build = join(dir, 'images/build');
    mkdirSync(join(build, 'rootfs'), { recursive: true });
    file(join(build, 'vmlinuz'), MB);
    file(join(build, 'initrd.img'), MB);
    mkdirSync(join(dir, 'root/etc'), { recursive: true });
    file(join(dir, 'root/payload.bin'), MB);
    spawnSync('tar', ['-C', join(dir, 'root'), '-cf', join(build, 'rootfs/web.tar'), '.']);
    for (const r of ['lb', 'db', 'file', 'test']) spawnSync('cp', [join(build, 'rootfs/web.tar'), join(build, `rootfs/${r}.tar`)]);
    writeFileSync(join(dir, 'rc.yaml'), `profilesDir: ${dir}/profiles\ndataDir: ${dir}/data\nimagesDir: ${dir}/images\naddress: ${SERVER}\nlogLevel: warn\nuser: root\ndhcp:\n  mode: 'off'\ntftp:\n  enabled: false\nhttp:\n  host: ${SERVER}\n  port: 8080\n`);
    const prof = process.env.BENCH_BOOTS_PROF ? ['--cpu-prof', '--cpu-prof-dir', resolve(process.env.BENCH_BOOTS_PROF)] : [];
    // BENCH_BOOTS_NODE_FLAGS: more node flags for the server (--perf-basic-prof, for perf to name JS frames).
    const flags = (process.env.BENCH_BOOTS_NODE_FLAGS ?? '').split(/\s+/).filter(Boolean);
    rc = spawn(process.execPath, [...flags, ...prof, join(ROOT, 'bin/rolecast.js'), 'serve', '--config', join(dir, 'rc.yaml')], { stdio: ['ignore', 'ignore', 'inherit'] });
    for (let i = 0; i < 200; i++) {
      if (spawnSync('curl', ['-sf', '-o', '/dev/null', `http://${SERVER}:8080/healthz`]).status === 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const lines = machines.map((m) => `${m.ip} ${m.mac}`).join('\n');
    const boot = `curl -s -f --interface "$0" -o /dev/null http://${SERVER}:8080/boot/$1.ipxe -o /dev/null http://${SERVER}:8080/images/kernel -o /dev/null http://${SERVER}:8080/images/initrd -o /dev/null http://${SERVER}:8080/rootfs/$1.tar`;
    const round = (input) => {
      const r = spawnSync('xargs', ['-P', String(C), '-L', '1', 'sh', '-c', boot], { input, encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`boots failed (xargs ${r.status}): ${r.stderr.split('\n').slice(0, 3).join('; ')}`);
    };
    round(lines.split('\n').slice(0, 2).join('\n')); // warm-up: the base's sha256, tar index and manifest, once per image version
    await new Promise((r) => setTimeout(r, 1000));
    const res = [];
    for (let k = 0; k < ROUNDS; k++) {
      const p0 = cpuMs(`/proc/${rc.pid}/stat`);
      const m0 = cpuMs(`/proc/${rc.pid}/task/${rc.pid}/stat`);
      const t0 = process.hrtime.bigint();
      round(lines);
      const wall = Number(process.hrtime.bigint() - t0) / 1e6;
      await new Promise((r) => setTimeout(r, 1500)); // the writes a boot leaves (events, served) land
      const r = { proc: (cpuMs(`/proc/${rc.pid}/stat`) - p0) / N, main: (cpuMs(`/proc/${rc.pid}/task/${rc.pid}/stat`) - m0) / N, wall };
      res.push(r);
      console.log(`  round ${k + 1} (load ${loadavg()[0].toFixed(1)}): ${N} boots in ${(wall / 1000).toFixed(2)} s; rolecast CPU ${r.proc.toFixed(2)} ms per boot, main thread ${r.main.toFixed(2)} ms`);
    }
    const med = (a) => [...a].sort((x, y) => x - y)[Math.floor((a.length - 1) / 2)];
    console.log(`${N} boots x 4 requests (script, kernel, initrd, rootfs of ${MB} MiB files), ${C} at a time, median of ${ROUNDS} (load ${loadavg().map((l) => l.toFixed(1)).join(' ')}): `
      + `rolecast CPU ${med(res.map((r) => r.proc)).toFixed(2)} ms per boot, main thread ${med(res.map((r) => r.main)).toFixed(2)} ms, wall ${(med(res.map((r) => r.wall)) / 1000).toFixed(2)} s`);
  } finally {
    if (rc) {
      const gone = new Promise((r) => rc.once('exit', r));
      rc.kill('SIGINT'); // SIGINT: --cpu-prof writes its profile
      await Promise.race([gone, new Promise((r) => setTimeout(r, 10_000))]);
      if (rc.exitCode === null && rc.signalCode === null) rc.kill('SIGKILL');
    }
    rmSync(dir, { recursive: true, force: true });
  }
}
