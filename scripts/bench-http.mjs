#!/usr/bin/env node
// npm run bench:http — a DSAS-size boot storm: C concurrent clients each fetching a per-machine rootfs
// of S MB (the web role's base + the machine's generated files, composed on the fly) from rolecast, and
// the same number of fetches of a static file of the same size from nginx, same run, inside a private
// network namespace on loopback. Also plain image files from rolecast. Reports throughput ratios and
// peak server memory (VmHWM). Defaults are scaled for a 2-core box: BENCH_CLIENTS=50 BENCH_MB=50;
// the full size is BENCH_CLIENTS=200 BENCH_MB=200. BENCH_ROUNDS (3): the median of that many rounds;
// the three servers take turns first, second and third from round to round, and before the first round
// each is asked once (rolecast's first rootfs request hashes and indexes the base image: a one-off per
// image version, not a per-request cost).
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, cpSync, mkdirSync, mkdtempSync, openSync, closeSync, writeSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { cpuGroups } from './bench-cpu.mjs';
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

function storm(url) {
  const t = process.hrtime.bigint();
  const urls = Array.from({ length: CLIENTS }, () => url).join('\n');
  const r = spawnSync('sh', ['-c', `xargs -P ${CLIENTS} -n 1 curl -sS -f --interface ${CLIENT} -o /dev/null`], { input: urls, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`storm on ${url} failed: ${r.stderr.split('\n').slice(0, 3).join('; ')}`);
  return (CLIENTS * MB) / (Number(process.hrtime.bigint() - t) / 1e9);
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
    cpSync(join(dir, 'images/build/rootfs/web.tar'), join(dir, 'www/static.tar'));
    writeFileSync(join(dir, 'rc.yaml'), `profilesDir: ${dir}/profiles\ndataDir: ${dir}/data\nimagesDir: ${dir}/images\naddress: ${SERVER}\nlogLevel: warn\ndhcp:\n  mode: 'off'\ntftp:\n  enabled: false\nhttp:\n  host: ${SERVER}\n  port: 8080\n`);
    writeFileSync(join(dir, 'nginx.conf'), `worker_processes auto; daemon off; pid ${dir}/nginx.pid; error_log ${dir}/nginx.err;\nevents { worker_connections 4096; }\nhttp { access_log off; sendfile on; server { listen ${SERVER}:8081; root ${dir}/www; } }\n`);
    const rc = spawn(process.execPath, [join(ROOT, 'bin/rolecast.js'), 'serve', '--config', join(dir, 'rc.yaml')], { stdio: 'ignore' });
    const ng = spawn('nginx', ['-c', join(dir, 'nginx.conf'), '-p', dir], { stdio: 'ignore' });
    procs.push(rc, ng);
    const cpu = cpuGroups({ rolecast: rc.pid, nginx: ng.pid }, cleanups, 'http');
    for (let i = 0; i < 100; i++) {
      if (spawnSync('curl', ['-sf', '-o', '/dev/null', `http://${SERVER}:8080/healthz`]).status === 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    // Rounds interleave the three servers so a noisy moment hurts them alike; the median of ROUNDS each.
    const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
    const runs = { rootfs: [], image: [], nginx: [] };
    // Server CPU per GB served (a private cpuacct cgroup per server: nginx's workers and rolecast's
    // sendfile threads included): the per-byte cost, which a loaded machine's wall clock hides.
    const perGb = { rootfs: [], image: [], nginx: [] };
    // The clients' CPU per GB too (curl, reaped through xargs and sh into this process's cutime/cstime):
    // on a saturated box the clients take most of the CPU, which bounds what a cheaper server can gain.
    const clientGb = { rootfs: [], image: [], nginx: [] };
    const measure = (kind, server, url) => {
      const c0 = cpu(server);
      const k0 = childrenCpuMs();
      runs[kind].push(storm(url));
      perGb[kind].push((cpu(server) - c0) / (CLIENTS * MB / 1000));
      clientGb[kind].push((childrenCpuMs() - k0) / (CLIENTS * MB / 1000));
    };
    const kinds = [['rootfs', 'rolecast', `http://${SERVER}:8080/rootfs/52:54:00:00:02:01.tar`], ['image', 'rolecast', `http://${SERVER}:8080/images/kernel`], ['nginx', 'nginx', `http://${SERVER}:8081/static.tar`]];
    for (const [, , url] of kinds) {
      if (spawnSync('curl', ['-sf', '--interface', CLIENT, '-o', '/dev/null', url]).status !== 0) throw new Error(`warm-up of ${url} failed`);
    }
    for (let round = 0; round < ROUNDS; round++) {
      const turn = [...kinds.slice(round % 3), ...kinds.slice(0, round % 3)];
      for (const [kind, server, url] of turn) measure(kind, server, url);
      console.log(`  round ${round + 1} (${turn.map((k) => k[0]).join(', ')}; load ${loadavg()[0].toFixed(1)}): rootfs ${runs.rootfs[round].toFixed(0)}, image ${runs.image[round].toFixed(0)}, nginx ${runs.nginx[round].toFixed(0)} MB/s; `
        + `server CPU ms/GB rootfs ${perGb.rootfs[round].toFixed(0)}, image ${perGb.image[round].toFixed(0)}, nginx ${perGb.nginx[round].toFixed(0)}; `
        + `client CPU ms/GB ${clientGb.rootfs[round].toFixed(0)}, ${clientGb.image[round].toFixed(0)}, ${clientGb.nginx[round].toFixed(0)}`);
    }
    const median = (a) => [...a].sort((x, y) => x - y)[Math.floor((a.length - 1) / 2)];
    const [rootfs, image, nginx] = [median(runs.rootfs), median(runs.image), median(runs.nginx)];
    const health = spawnSync('curl', ['-sf', `http://${SERVER}:8080/healthz`], { encoding: 'utf8' }).stdout;
    console.log(`rolecast sendfile engine: ${JSON.parse(health).sendfile ? 'on' : 'off (streaming through Node)'}`);
    console.log(`${CLIENTS} clients x ${MB} MB (median of ${ROUNDS}, load ${loadavg().map((l) => l.toFixed(1)).join(' ')}): rolecast rootfs (composed) ${rootfs.toFixed(0)} MB/s, rolecast image ${image.toFixed(0)} MB/s, nginx static ${nginx.toFixed(0)} MB/s`);
    console.log(`server CPU per GB (median): rootfs ${median(perGb.rootfs).toFixed(0)} ms, image ${median(perGb.image).toFixed(0)} ms, nginx ${median(perGb.nginx).toFixed(0)} ms; nginx/rolecast CPU: composed ${(median(perGb.nginx) / median(perGb.rootfs)).toFixed(2)}, image ${(median(perGb.nginx) / median(perGb.image)).toFixed(2)} (> 1: rolecast cheaper)`);
    const total = (k) => median(perGb[k]) + median(clientGb[k]);
    console.log(`client CPU per GB (median): rootfs ${median(clientGb.rootfs).toFixed(0)} ms, image ${median(clientGb.image).toFixed(0)} ms, nginx ${median(clientGb.nginx).toFixed(0)} ms; `
      + `(server + client) nginx/rolecast: composed ${(total('nginx') / total('rootfs')).toFixed(2)}, image ${(total('nginx') / total('image')).toFixed(2)} (the wall-clock ratio a CPU-bound box allows)`);
    console.log(`ratios: composed/nginx ${(rootfs / nginx).toFixed(2)} (target >= 1.0), image/nginx ${(image / nginx).toFixed(2)} (target >= 1.2); rolecast peak RSS ${hwm(rc.pid).toFixed(0)} MB`);
  } finally {
    for (const p of procs) p.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 500));
    for (const c of cleanups) c();
    rmSync(dir, { recursive: true, force: true });
  }
}
