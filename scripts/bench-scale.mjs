#!/usr/bin/env node
// npm run bench:scale — inventory scale (issue 15, target 3), on generated profiles in a temp dir:
//   validate 10,000 and 100,000 machines (wall, CPU, peak RSS; median of BENCH_RUNS);
//   `rolecast serve` at 10,000 machines inside a network namespace: start-up to "rolecast serving",
//   RSS, every API endpoint and UI page the first time after the start, warm (p50/p99 of BENCH_SCALE_ROUNDS
//   rounds) and the first time after a reload (an edit + SIGHUP, timed from the swap), per-machine file
//   requests, and event-loop stalls (perf_hooks.monitorEventLoopDelay, via scripts/bench-loop-probe.mjs)
//   while perfdhcp asks for the machines' reservations at 1000/s — once with API calls meanwhile, once
//   across a profile reload (an edit: the new snapshot is loaded off-thread, swapped in and its content
//   hashes re-warmed). Ends with each target of the issue and whether this run reached it.
// Needs root for the namespaces (the validate part runs without).
import { spawn, spawnSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { appendFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeProfiles } from './bench-profiles.mjs';

const ROOT = join(fileURLToPath(import.meta.url), '../..');
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const SIZES = (process.env.BENCH_SCALE_SIZES ?? '10000,100000').split(',').map(Number).filter((n) => n > 0);
const SERVE_N = Number(process.env.BENCH_SCALE_SERVE ?? 10000);
const ROUNDS = Number(process.env.BENCH_SCALE_ROUNDS ?? 10);
const DHCP_PHASES = process.env.BENCH_SCALE_DHCP !== '0';
// Node flags for the served process (e.g. `--cpu-prof --cpu-prof-dir=DIR`: one profile per thread, written at its SIGTERM).
const NODE_ARGS = (process.env.BENCH_SCALE_NODE_ARGS ?? '').split(' ').filter(Boolean);
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
    if (n === 100000) console.log(`  target: 100,000 machines validate in <= 10 s: ${median(runs.map((r) => r.wall)) <= 10 ? 'reached' : 'NOT reached'} (wall), ${median(runs.map((r) => r.cpu)) <= 10 ? 'reached' : 'NOT reached'} (CPU)`);
    console.log(`validate ${n} machines: wall ${fmt(median(runs.map((r) => r.wall)))} s, CPU ${fmt(median(runs.map((r) => r.cpu)))} s, peak RSS ${fmt(median(runs.map((r) => r.rssMB)), 0)} MB (median of ${RUNS}; walls ${runs.map((r) => fmt(r.wall)).join(' ')})`);
  }
}

const id = process.pid;
// ROLECAST_NS_PREFIX: several people sharing one machine tell their namespaces apart (as test/helpers/netns.ts).
const S = `${process.env.ROLECAST_NS_PREFIX ?? ''}rcss${id}`;
const C = `${process.env.ROLECAST_NS_PREFIX ?? ''}rcsc${id}`;
const ip = (...a) => { const r = spawnSync('ip', a, { encoding: 'utf8' }); if (r.status !== 0) throw new Error(`ip ${a.join(' ')}: ${r.stderr}`); };
const inC = (cmd, args, opts = {}) => spawnSync('ip', ['netns', 'exec', C, cmd, ...args], { encoding: 'utf8', ...opts });

/** Every API endpoint and UI page a reader uses, at a machine in the middle of the inventory and a load balancer. */
function endpoints(machines) {
  const w = machines[Math.floor(machines.length / 2)];
  return [
    ['/api/machines', '/api/machines'], ['/api/fleet', '/api/fleet'], ['/api/machines/<host>', `/api/machines/${w.host}`],
    ['/api/machines/<host>/files', `/api/machines/${w.host}/files`], ['/api/machines/<lb>/files', '/api/machines/lb1/files'],
    ['/api/machines/<host>/events', `/api/machines/${w.host}/events`], ['/api/machines/<host>/console', `/api/machines/${w.host}/console`],
    ['/api/machines/<host>/power', `/api/machines/${w.host}/power`], ['/api/events (SSE, first byte)', '/api/events', true],
    ['/api/discovered', '/api/discovered'], ['/api/leases', '/api/leases'], ['/api/profiles/status', '/api/profiles/status'],
    ['/api/images/web/versions', '/api/images/web/versions'], ['/api/openapi.json', '/api/openapi.json'], ['/metrics', '/metrics'], ['/healthz', '/healthz'],
    ['/ui/', '/ui/'], ['/ui/assets/app.js', '/ui/assets/app.js'], ['/boot/<mac>.ipxe', `/boot/${w.mac}.ipxe`], ['/files/<mac>/etc/hosts', `/files/${w.mac}/etc/hosts`],
  ].map(([name, path, sse]) => ({ name, url: `http://10.0.0.1:8080${path}`, sse: !!sse }));
}

/** One request to each endpoint, in order (ms, wall, as curl measures it; SSE: to the first byte). */
function timeEndpoints(eps, token) {
  const out = {};
  const plain = eps.filter((e) => !e.sse);
  curlTimes(plain.map((e) => e.url), token).forEach((r, i) => { out[plain[i].name] = { ms: r.t * 1000, code: r.code }; });
  for (const e of eps.filter((x) => x.sse)) {
    const r = inC('curl', ['-s', '-N', '-m', '1', '-H', `authorization: Bearer ${token}`, '-o', '/dev/null', '-w', '%{http_code} %{time_starttransfer}', e.url], { timeout: 10_000 });
    const [code, t] = r.stdout.trim().split(' ');
    out[e.name] = { ms: Number(t) * 1000, code: Number(code) };
  }
  return out;
}

const profileVersion = (token) => { try { return JSON.parse(inC('curl', ['-s', '-H', `authorization: Bearer ${token}`, 'http://10.0.0.1:8080/api/profiles/status']).stdout).version; } catch { return undefined; } };

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
  const p = track(spawn('ip', ['netns', 'exec', S, process.execPath, ...NODE_ARGS, '--import', join(ROOT, 'scripts/bench-loop-probe.mjs'), join(ROOT, 'bin/rolecast.js'), 'serve', '--config', cfgFile],
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
  const loop = async () => { loops = []; process.kill(pid, 'SIGUSR2'); for (let i = 0; i < 500 && !loops.length; i++) await sleep(20); return loops[0] ?? { mainCpuS: NaN, maxMs: NaN, p99Ms: NaN, cpuMaxMs: NaN, rssMB: NaN, peakRssMB: NaN, cpuS: NaN }; };
  const started = await loop();
  const res = { startS, startCpuS: started.cpuS, startMainCpuS: started.mainCpuS, startRssMB: started.rssMB };
  const eps = endpoints(machines);
  res.firstStart = timeEndpoints(eps, token);
  res.warm = [];
  for (let i = 0; i < ROUNDS; i++) res.warm.push(timeEndpoints(eps, token));
  const files = curlTimes(Array.from({ length: 50 }, (_, i) => `http://10.0.0.1:8080/files/${machines[(i * 7919) % machines.length].mac}/etc/hostname`), token);
  res.fileMedianMs = median(files.map((x) => x.t)) * 1000; res.fileCodes = [...new Set(files.map((x) => x.code))];
  await sleep(1500); // let any background warm-up finish
  res.idle = await loop();
  // A reload on its own (an edit: new version, same machines; SIGHUP), then every endpoint once more.
  // One load: the watcher sees the same files settle afterwards and leaves them (src/inventory/watch.ts);
  // before, it loaded all 10,000 machines a second time ~2 s later, in the middle of the next phase.
  const v0 = profileVersion(token);
  appendFileSync(join(prof, 'machines.yaml'), `# bench quiet reload ${run} ${Date.now()}\n`);
  const tr = performance.now();
  process.kill(pid, 'SIGHUP');
  for (let i = 0; i < 1500 && profileVersion(token) === v0; i++) await sleep(20);
  res.reloadS = (performance.now() - tr) / 1000;
  res.firstReload = timeEndpoints(eps, token);
  res.loopQuietReload = await loop();
  if (!DHCP_PHASES) { res.dhcpApi = res.dhcpReload = {}; res.loopApi = res.loopReload = res.loopQuietReload; }
  else {
    // DHCP at 1000/s for 10 s with GET /api/machines every second meanwhile.
    const macFile = join(dir, 'macs.txt');
    const dhcp = perfdhcp(macFile, 1000, 10);
    for (let i = 0; i < 8; i++) { await sleep(1000); curlTimes(['http://10.0.0.1:8080/api/machines'], token); }
    res.dhcpApi = await dhcp;
    res.loopApi = await loop();
    // The same across a reload of the profiles.
    const dhcp2 = perfdhcp(macFile, 1000, 10);
    await sleep(3000);
    // A real change (a comment: new version, same machines), so the snapshot is swapped and re-warmed too.
    appendFileSync(join(prof, 'machines.yaml'), `# bench reload ${run} ${Date.now()}\n`);
    process.kill(pid, 'SIGHUP');
    res.dhcpReload = await dhcp2;
    res.loopReload = await loop();
  }
  res.endRss = res.loopReload;
  try { process.kill(-p.pid, 'SIGTERM'); } catch { /* gone */ }
  await new Promise((r) => p.once('close', r));
  // BENCH_SCALE_LOG=PREFIX: the server's output (with BENCH_SCALE_NODE_ARGS=--trace-gc, its collections) in PREFIX.<run>.
  if (process.env.BENCH_SCALE_LOG) writeFileSync(`${process.env.BENCH_SCALE_LOG}.${run}`, log);
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
    console.log(`serve ${SERVE_N} machines (median of ${RUNS}): start ${fmt(med((r) => r.startS))} s wall, ${fmt(med((r) => r.startCpuS))} s CPU (main thread ${fmt(med((r) => r.startMainCpuS))} s; every thread, the loader's hashing under way included) (runs ${runs.map((r) => fmt(r.startS)).join(' ')}), RSS at start ${fmt(med((r) => r.startRssMB), 0)} MB, after the first calls ${fmt(med((r) => r.idle.rssMB), 0)} MB, at the end ${fmt(med((r) => r.endRss.rssMB), 0)} MB, peak ${fmt(med((r) => r.idle.peakRssMB), 0)} MB`);
    console.log(`  GET /files/<mac>/etc/hostname median ${fmt(med((r) => r.fileMedianMs), 1)} ms (HTTP ${runs[0].fileCodes}); a reload (edit + SIGHUP to the swap) ${fmt(med((r) => r.reloadS))} s`);
    const names = Object.keys(runs[0].firstStart);
    const pct = (a, q) => { const s2 = [...a].sort((x, y) => x - y); return s2[Math.min(s2.length - 1, Math.ceil(q * s2.length) - 1)]; };
    let worst = 0;
    console.log(`  every endpoint, ms wall (first after start / first after a reload: median of ${RUNS} runs; warm: p50 / p99 of ${RUNS}x${ROUNDS}):`);
    for (const n of names) {
      const warm = runs.flatMap((r) => r.warm.map((w) => w[n].ms));
      const row = [med((r) => r.firstStart[n].ms), med((r) => r.firstReload[n].ms), pct(warm, 0.5), pct(warm, 0.99)];
      worst = Math.max(worst, ...row);
      const codes = [...new Set(runs.flatMap((r) => [r.firstStart[n].code, r.firstReload[n].code, ...r.warm.map((w) => w[n].code)]))].join('/');
      console.log(`    ${n.padEnd(32)} ${row.map((x) => fmt(x, 1).padStart(8)).join(' ')}   HTTP ${codes}${Math.max(...row) > 200 ? '   > 200 ms' : ''}`);
    }
    console.log(`  event loop idle after start: max ${fmt(med((r) => r.idle.maxMs), 1)} ms wall, ${fmt(med((r) => r.idle.cpuMaxMs), 1)} ms on-CPU; across a quiet reload: max ${fmt(med((r) => r.loopQuietReload.maxMs), 1)} ms wall, ${fmt(med((r) => r.loopQuietReload.cpuMaxMs), 1)} ms on-CPU (runs ${runs.map((r) => fmt(r.loopQuietReload.cpuMaxMs, 0)).join(' ')})`);
    if (DHCP_PHASES) {
      console.log(`  DHCP 1000/s + /api/machines each second: ${fmt(med((r) => r.dhcpApi.rate), 0)} exchanges/s, drops ${runs.map((r) => `${r.dhcpApi.drops}/${r.dhcpApi.sent}`).join(' ')}, max delay ${fmt(med((r) => r.dhcpApi.maxMs), 1)} ms; loop max ${fmt(med((r) => r.loopApi.maxMs), 1)} ms p99 ${fmt(med((r) => r.loopApi.p99Ms), 1)} ms (runs ${runs.map((r) => fmt(r.loopApi.maxMs, 0)).join(' ')}), longest on-CPU stretch ${fmt(med((r) => r.loopApi.cpuMaxMs), 1)} ms (runs ${runs.map((r) => fmt(r.loopApi.cpuMaxMs, 0)).join(' ')})`);
      console.log(`  DHCP 1000/s across a reload: drops ${runs.map((r) => `${r.dhcpReload.drops}/${r.dhcpReload.sent}`).join(' ')}, max delay ${fmt(med((r) => r.dhcpReload.maxMs), 1)} ms; loop max ${fmt(med((r) => r.loopReload.maxMs), 1)} ms (runs ${runs.map((r) => fmt(r.loopReload.maxMs, 0)).join(' ')}), longest on-CPU stretch ${fmt(med((r) => r.loopReload.cpuMaxMs), 1)} ms (runs ${runs.map((r) => fmt(r.loopReload.cpuMaxMs, 0)).join(' ')})`);
    }
    const rss = med((r) => r.idle.rssMB);
    const peak = med((r) => r.idle.peakRssMB);
    const stall = Math.max(med((r) => r.loopApi.maxMs), med((r) => r.loopReload.maxMs));
    const stallCpu = Math.max(med((r) => r.loopApi.cpuMaxMs), med((r) => r.loopReload.cpuMaxMs));
    const verdict = (ok) => (ok ? 'reached' : 'NOT reached');
    console.log(`targets (issue 15, 3) at load ${loadavg().map((x) => x.toFixed(1)).join(' ')}:`);
    console.log(`  serve starts in <= 2 s: ${fmt(med((r) => r.startS))} s wall, ${fmt(med((r) => r.startCpuS))} s CPU: ${verdict(med((r) => r.startS) <= 2)} (wall), ${verdict(med((r) => r.startCpuS) <= 2)} (CPU)`);
    console.log(`  <= 250 MB RSS: ${fmt(rss, 0)} MB after start and the first calls (peak ${fmt(peak, 0)} MB): ${verdict(rss <= 250)} (peak ${verdict(peak <= 250)})`);
    console.log(`  any API call <= 200 ms: worst ${fmt(worst, 0)} ms wall: ${verdict(worst <= 200)}`);
    console.log(`  no event-loop stall over 50 ms with DHCP at 1000/s: max ${fmt(stall, 0)} ms wall, ${fmt(stallCpu, 0)} ms on-CPU: ${verdict(stall <= 50)} (wall), ${verdict(stallCpu <= 50)} (on-CPU)${DHCP_PHASES ? '' : ' [no DHCP in this run: quiet reload only]'}`);
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
