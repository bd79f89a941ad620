#!/usr/bin/env node
// npm run bench:scale — inventory scale (issue 15, target 3), on generated profiles in a temp dir:
//   validate 10,000 and 100,000 machines (wall, CPU, peak RSS; median of BENCH_RUNS);
//   `rolecast serve` at 10,000 machines inside a network namespace: start-up to "rolecast serving",
//   RSS, GET /api/machines (first and later), per-machine file requests, and event-loop stalls
//   (perf_hooks.monitorEventLoopDelay, via scripts/bench-loop-probe.mjs) while perfdhcp asks for the
//   machines' reservations at 1000/s — once with API calls meanwhile, once across a profile reload (an edit:
//   the new snapshot is loaded off-thread, swapped in and its content hashes re-warmed).
// Needs root for the namespaces (the validate part runs without).
import { spawn, spawnSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { appendFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeProfiles } from './bench-profiles.mjs';

const ROOT = join(fileURLToPath(import.meta.url), '../..');
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const SIZES = (process.env.BENCH_SCALE_SIZES ?? '10000,100000').split(',').map(Number).filter((n) => n > 0);
const SERVE_N = Number(process.env.BENCH_SCALE_SERVE ?? 10000);
const dir = mkdtempSync(join(tmpdir(), 'rolecast-bench-scale-'));
const median = (a) => { const s = [...a].sort((x, y) => x - y); return s[Math.floor((s.length - 1) / 2)]; };
const fmt = (x, d = 2) => Number(x).toFixed(d);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function timed(args) {
  const r = spawnSync('/usr/bin/time', ['-f', 'TIME %e %U %S %M', process.execPath, ...args], { encoding: 'utf8' });
  const m = /TIME ([0-9.]+) ([0-9.]+) ([0-9.]+) ([0-9]+)/.exec(r.stderr);
  if (r.status !== 0 || !m) throw new Error(`${args.join(' ')}: ${r.stdout}${r.stderr}`);
  return { wall: Number(m[1]), cpu: Number(m[2]) + Number(m[3]), rssMB: Number(m[4]) / 1024 };
}

function benchValidate() {
  for (const n of SIZES) {
    const prof = join(dir, `profiles-${n}`);
    mkdirSync(prof);
    writeProfiles(prof, n);
    const runs = Array.from({ length: RUNS }, () => timed([join(ROOT, 'bin/rolecast.js'), 'validate', '--profiles', prof]));
    console.log(`validate ${n} machines: wall ${fmt(median(runs.map((r) => r.wall)))} s, CPU ${fmt(median(runs.map((r) => r.cpu)))} s, peak RSS ${fmt(median(runs.map((r) => r.rssMB)), 0)} MB (median of ${RUNS}; walls ${runs.map((r) => fmt(r.wall)).join(' ')})`);
  }
}

const id = process.pid;
const S = `rcss${id}`;
const C = `rcsc${id}`;
const ip = (...a) => { const r = spawnSync('ip', a, { encoding: 'utf8' }); if (r.status !== 0) throw new Error(`ip ${a.join(' ')}: ${r.stderr}`); };
const inC = (cmd, args, opts = {}) => spawnSync('ip', ['netns', 'exec', C, cmd, ...args], { encoding: 'utf8', ...opts });

/** curl timings (seconds) for URLs fetched over one keep-alive connection. */
function curlTimes(urls, token) {
  const r = inC('curl', ['-s', '-H', `authorization: Bearer ${token}`, '-w', '%{http_code} %{time_total}\n', ...urls.flatMap((u) => ['-o', '/dev/null', u])], { timeout: 120_000 });
  return r.stdout.trim().split('\n').map((l) => { const [code, t] = l.split(' '); return { code: Number(code), t: Number(t) }; });
}

function perfdhcp(macFile, rate, seconds) {
  return new Promise((resolve) => {
    const p = spawn('ip', ['netns', 'exec', C, 'perfdhcp', '-4', '-r', String(rate), '-p', String(seconds), '-M', macFile,
      '-o', `60,${Buffer.from('PXEClient:Arch:00000:UNDI:002001').toString('hex')}`, '10.0.0.1'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { out += d; });
    p.on('close', () => {
      const drops = [...out.matchAll(/^drops: ([0-9]+)/gm)].reduce((a, m) => a + Number(m[1]), 0);
      const delays = [...out.matchAll(/^avg delay: ([0-9.]+) ms/gm)].map((m) => Number(m[1]));
      const maxd = [...out.matchAll(/^max delay: ([0-9.]+) ms/gm)].map((m) => Number(m[1]));
      resolve({ rate: Number(/Rate: ([0-9.]+) 4-way/.exec(out)?.[1] ?? 0), drops, sent: Number(/sent packets: ([0-9]+)/.exec(out)?.[1] ?? 0), avgMs: delays[0], maxMs: maxd[0] });
    });
  });
}

// Servers started so far: stopped in the end whatever happened (a failed run must not leave one behind).
const servers = [];
const track = (p) => { servers.push(p); return p; };
const stopAll = () => { for (const p of servers) { try { process.kill(-p.pid, 'SIGTERM'); } catch { /* gone */ } } };

async function serveOnce(prof, run, machines) {
  const data = join(dir, `data-${run}`);
  const token = 'bench-scale-token';
  const cfgFile = join(dir, `serve-${run}.yaml`);
  writeFileSync(cfgFile, [`address: 10.0.0.1`, `profilesDir: ${prof}`, `dataDir: ${data}`, `imagesDir: ${join(ROOT, 'images')}`, 'logLevel: warn',
    'dhcp: { mode: authoritative }', 'tftp: { roots: [/usr/lib/ipxe] }', `http: { port: 8080, token: ${token} }`, ''].join('\n'));
  const t0 = performance.now();
  const p = track(spawn('ip', ['netns', 'exec', S, process.execPath, '--import', join(ROOT, 'scripts/bench-loop-probe.mjs'), join(ROOT, 'bin/rolecast.js'), 'serve', '--config', cfgFile],
    { detached: true, stdio: ['ignore', 'pipe', 'pipe'] }));
  let log = '';
  let loops = [];
  p.stdout.on('data', (d) => { log += d; });
  p.stderr.on('data', (d) => { for (const m of String(d).matchAll(/^LOOP (.*)$/gm)) loops.push(JSON.parse(m[1])); log += d; });
  // logLevel warn hides "rolecast serving": poll /healthz instead (the start is done when it answers).
  let startS;
  for (let i = 0; i < 600 && startS === undefined; i++) {
    if (inC('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', 'http://10.0.0.1:8080/healthz']).stdout === '200') startS = (performance.now() - t0) / 1000;
    else await sleep(20);
  }
  if (startS === undefined) throw new Error(`serve did not start: ${log}`);
  const pid = serverPid(p);
  const loop = async () => { loops = []; process.kill(pid, 'SIGUSR2'); for (let i = 0; i < 500 && !loops.length; i++) await sleep(20); return loops[0] ?? { maxMs: NaN, p99Ms: NaN, cpuMaxMs: NaN, rssMB: NaN, peakRssMB: NaN, cpuS: NaN }; };
  const started = await loop();
  const res = { startS, startCpuS: started.cpuS };
  const api = curlTimes(Array(5).fill('http://10.0.0.1:8080/api/machines'), token);
  res.apiFirst = api[0].t; res.apiLater = median(api.slice(1).map((x) => x.t)); res.apiCodes = [...new Set(api.map((x) => x.code))];
  const files = curlTimes(Array.from({ length: 50 }, (_, i) => `http://10.0.0.1:8080/files/${machines[(i * 7919) % machines.length].mac}/etc/hostname`), token);
  res.fileMedianMs = median(files.map((x) => x.t)) * 1000; res.fileCodes = [...new Set(files.map((x) => x.code))];
  await sleep(1500); // let the background hash warm-up finish
  res.idle = await loop();
  // DHCP at 1000/s for 10 s with GET /api/machines every second meanwhile.
  const macFile = join(dir, 'macs.txt');
  const dhcp = perfdhcp(macFile, 1000, 10);
  for (let i = 0; i < 8; i++) { await sleep(1000); curlTimes(['http://10.0.0.1:8080/api/machines'], token); }
  res.dhcpApi = await dhcp;
  res.loopApi = await loop();
  // The same across a reload of the profiles (mtime bump: the watcher re-reads machines.yaml).
  const dhcp2 = perfdhcp(macFile, 1000, 10);
  await sleep(3000);
  // A real change (a comment: new version, same machines), so the snapshot is swapped and re-warmed too.
  appendFileSync(join(prof, 'machines.yaml'), `# bench reload ${run} ${Date.now()}\n`);
  process.kill(pid, 'SIGHUP');
  res.dhcpReload = await dhcp2;
  res.loopReload = await loop();
  try { process.kill(-p.pid, 'SIGTERM'); } catch { /* gone */ }
  await new Promise((r) => p.once('close', r));
  return res;
}

/** `ip netns exec` execs node: the spawned PID is the server's (its children are radvd and the like). */
const serverPid = (p) => p.pid;

async function benchServe() {
  if (process.getuid?.() !== 0) { console.log('serve at scale: skipped (needs root for the namespaces)'); return; }
  const prof = join(dir, `serve-profiles-${SERVE_N}`);
  mkdirSync(prof);
  const machines = writeProfiles(prof, SERVE_N);
  writeFileSync(join(dir, 'macs.txt'), `${machines.map((m) => m.mac).join('\n')}\n`);
  try {
    for (const n of [S, C]) { ip('netns', 'add', n); ip('-n', n, 'link', 'set', 'lo', 'up'); }
    ip('-n', S, 'link', 'add', 'v1', 'type', 'veth', 'peer', 'name', 'v2', 'netns', C);
    ip('-n', S, 'addr', 'add', '10.0.0.1/14', 'dev', 'v1'); ip('-n', S, 'link', 'set', 'v1', 'up');
    ip('-n', C, 'addr', 'add', '10.3.250.1/14', 'dev', 'v2'); ip('-n', C, 'link', 'set', 'v2', 'up');
    const runs = [];
    for (let i = 0; i < RUNS; i++) runs.push(await serveOnce(prof, i, machines));
    const med = (f) => median(runs.map(f));
    console.log(`serve ${SERVE_N} machines (median of ${RUNS}): start ${fmt(med((r) => r.startS))} s wall, ${fmt(med((r) => r.startCpuS))} s CPU (runs ${runs.map((r) => fmt(r.startS)).join(' ')}), RSS ${fmt(med((r) => r.idle.rssMB), 0)} MB, peak ${fmt(med((r) => r.idle.peakRssMB), 0)} MB`);
    console.log(`  GET /api/machines: first ${fmt(med((r) => r.apiFirst) * 1000, 0)} ms, later ${fmt(med((r) => r.apiLater) * 1000, 0)} ms (HTTP ${runs[0].apiCodes}); GET /files/<mac>/etc/hostname median ${fmt(med((r) => r.fileMedianMs), 1)} ms (HTTP ${runs[0].fileCodes})`);
    console.log(`  event loop idle after start: max ${fmt(med((r) => r.idle.maxMs), 1)} ms wall, ${fmt(med((r) => r.idle.cpuMaxMs), 1)} ms on-CPU`);
    console.log(`  DHCP 1000/s + /api/machines each second: ${fmt(med((r) => r.dhcpApi.rate), 0)} exchanges/s, drops ${runs.map((r) => `${r.dhcpApi.drops}/${r.dhcpApi.sent}`).join(' ')}, max delay ${fmt(med((r) => r.dhcpApi.maxMs), 1)} ms; loop max ${fmt(med((r) => r.loopApi.maxMs), 1)} ms p99 ${fmt(med((r) => r.loopApi.p99Ms), 1)} ms (runs ${runs.map((r) => fmt(r.loopApi.maxMs, 0)).join(' ')}), longest on-CPU stretch ${fmt(med((r) => r.loopApi.cpuMaxMs), 1)} ms (runs ${runs.map((r) => fmt(r.loopApi.cpuMaxMs, 0)).join(' ')})`);
    console.log(`  DHCP 1000/s across a reload: drops ${runs.map((r) => `${r.dhcpReload.drops}/${r.dhcpReload.sent}`).join(' ')}, max delay ${fmt(med((r) => r.dhcpReload.maxMs), 1)} ms; loop max ${fmt(med((r) => r.loopReload.maxMs), 1)} ms (runs ${runs.map((r) => fmt(r.loopReload.maxMs, 0)).join(' ')}), longest on-CPU stretch ${fmt(med((r) => r.loopReload.cpuMaxMs), 1)} ms (runs ${runs.map((r) => fmt(r.loopReload.cpuMaxMs, 0)).join(' ')})`);
  } finally {
    stopAll();
    for (const n of [S, C]) spawnSync('ip', ['netns', 'delete', n]);
  }
}

try {
  console.log(`bench:scale on ${(await import('node:os')).cpus().length} cores, load average ${(await import('node:os')).loadavg().map((x) => x.toFixed(1)).join(' ')}`);
  benchValidate();
  await benchServe();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
