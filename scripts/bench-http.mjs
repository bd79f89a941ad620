#!/usr/bin/env node
// npm run bench:http — a DSAS-size boot storm: C concurrent clients each fetching a per-machine rootfs
// of S MB (the web role's base + the machine's generated files, composed on the fly) from rolecast, and
// the same number of fetches of a static file of the same size from nginx, same run, inside a private
// network namespace on loopback. Also plain image files from rolecast. Reports throughput ratios and
// peak server memory (VmHWM). Defaults are scaled for a 2-core box: BENCH_CLIENTS=50 BENCH_MB=50;
// the full size is BENCH_CLIENTS=200 BENCH_MB=200. BENCH_ROUNDS (3): the median of that many rounds.
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, cpSync, mkdirSync, mkdtempSync, openSync, closeSync, writeSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';

const self = fileURLToPath(import.meta.url);
const ROOT = join(self, '../..');
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 50);
const MB = Number(process.env.BENCH_MB ?? 50);

if (!process.argv.includes('--inner')) {
  if (process.getuid?.() !== 0) { console.error('bench:http needs root (own network namespace)'); process.exit(1); }
  const ns = `rcbh${process.pid}`;
  spawnSync('ip', ['netns', 'add', ns]);
  spawnSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  try {
    process.exitCode = spawnSync('ip', ['netns', 'exec', ns, process.execPath, self, '--inner'], { stdio: 'inherit', cwd: ROOT }).status ?? 1;
  } finally {
    spawnSync('ip', ['netns', 'delete', ns]);
  }
} else {
  await inner();
}

function bigFile(path, mb) {
  const fd = openSync(path, 'w');
  const chunk = randomBytes(1024 * 1024);
  for (let i = 0; i < mb; i++) writeSync(fd, chunk);
  closeSync(fd);
}

function hwm(pid) {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

function storm(url) {
  const t = process.hrtime.bigint();
  const urls = Array.from({ length: CLIENTS }, () => url).join('\n');
  const r = spawnSync('sh', ['-c', `xargs -P ${CLIENTS} -n 1 curl -sS -f -o /dev/null`], { input: urls, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`storm on ${url} failed: ${r.stderr}`);
  return (CLIENTS * MB) / (Number(process.hrtime.bigint() - t) / 1e9);
}

async function inner() {
  const dir = mkdtempSync(join(tmpdir(), 'rolecast-bench-http-'));
  chmodSync(dir, 0o755); // nginx workers run as www-data
  const procs = [];
  try {
    cpSync(join(ROOT, 'profiles'), join(dir, 'profiles'), { recursive: true });
    mkdirSync(join(dir, 'images/build/rootfs'), { recursive: true });
    mkdirSync(join(dir, 'base/srv'), { recursive: true });
    bigFile(join(dir, 'base/srv/payload.bin'), MB);
    spawnSync('tar', ['-C', join(dir, 'base'), '-cf', join(dir, 'images/build/rootfs/web.tar'), '.']);
    bigFile(join(dir, 'images/build/vmlinuz'), MB);
    mkdirSync(join(dir, 'www'));
    cpSync(join(dir, 'images/build/rootfs/web.tar'), join(dir, 'www/static.tar'));
    writeFileSync(join(dir, 'rc.yaml'), `profilesDir: ${dir}/profiles\ndataDir: ${dir}/data\nimagesDir: ${dir}/images\naddress: 127.0.0.1\nlogLevel: warn\ndhcp:\n  mode: 'off'\ntftp:\n  enabled: false\nhttp:\n  host: 127.0.0.1\n  port: 8080\n`);
    writeFileSync(join(dir, 'nginx.conf'), `worker_processes auto; daemon off; pid ${dir}/nginx.pid; error_log ${dir}/nginx.err;\nevents { worker_connections 4096; }\nhttp { access_log off; sendfile on; server { listen 127.0.0.1:8081; root ${dir}/www; } }\n`);
    const rc = spawn(process.execPath, [join(ROOT, 'bin/rolecast.js'), 'serve', '--config', join(dir, 'rc.yaml')], { stdio: 'ignore' });
    const ng = spawn('nginx', ['-c', join(dir, 'nginx.conf'), '-p', dir], { stdio: 'ignore' });
    procs.push(rc, ng);
    for (let i = 0; i < 100; i++) {
      if (spawnSync('curl', ['-sf', '-o', '/dev/null', 'http://127.0.0.1:8080/healthz']).status === 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    // Rounds interleave the three servers so a noisy moment hurts them alike; the median of ROUNDS each.
    const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
    const runs = { rootfs: [], image: [], nginx: [] };
    for (let round = 0; round < ROUNDS; round++) {
      runs.rootfs.push(storm('http://127.0.0.1:8080/rootfs/52:54:00:00:02:01.tar'));
      runs.image.push(storm('http://127.0.0.1:8080/images/kernel'));
      runs.nginx.push(storm('http://127.0.0.1:8081/static.tar'));
      console.log(`  round ${round + 1} (load ${loadavg()[0].toFixed(1)}): rootfs ${runs.rootfs[round].toFixed(0)}, image ${runs.image[round].toFixed(0)}, nginx ${runs.nginx[round].toFixed(0)} MB/s`);
    }
    const median = (a) => [...a].sort((x, y) => x - y)[Math.floor((a.length - 1) / 2)];
    const [rootfs, image, nginx] = [median(runs.rootfs), median(runs.image), median(runs.nginx)];
    const health = spawnSync('curl', ['-sf', 'http://127.0.0.1:8080/healthz'], { encoding: 'utf8' }).stdout;
    console.log(`rolecast sendfile engine: ${JSON.parse(health).sendfile ? 'on' : 'off (streaming through Node)'}`);
    console.log(`${CLIENTS} clients x ${MB} MB (median of ${ROUNDS}, load ${loadavg().map((l) => l.toFixed(1)).join(' ')}): rolecast rootfs (composed) ${rootfs.toFixed(0)} MB/s, rolecast image ${image.toFixed(0)} MB/s, nginx static ${nginx.toFixed(0)} MB/s`);
    console.log(`ratios: composed/nginx ${(rootfs / nginx).toFixed(2)} (target >= 1.0), image/nginx ${(image / nginx).toFixed(2)} (target >= 1.2); rolecast peak RSS ${hwm(rc.pid).toFixed(0)} MB`);
  } finally {
    for (const p of procs) p.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    rmSync(dir, { recursive: true, force: true });
  }
}
