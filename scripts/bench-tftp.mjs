#!/usr/bin/env node
// npm run bench:tftp — rolecast's TFTP against tftpd-hpa and dnsmasq, same files, same client, same run,
// inside a private network namespace (loopback only). Reports MiB/s per case and rolecast's ratio.
// Cases: one 30 MiB file at blksize 1468; the same with windowsize 16 (tftpd-hpa ignores windowsize: its
// figure is lock-step, the yardstick of issue 15's "windowsize >= 6x"); 200 parallel transfers of a 1 MiB
// file; then the 30 MiB file again with atftp as the client (lock-step and windowsize 16). The client of
// the first three is scripts/tftp-bench-client.c (C, one epoll loop, as cheap per block as atftp): the Node
// client it replaced spent 33-39 us of CPU per lock-step block against the servers' 15-25 and set the pace. rolecast runs twice: with its default
// busy-poll and with it off (tftp.busyPollUs 0), and a third time on its JS sessions (ROLECAST_TFTP_ENGINE=js). Each figure is the median of BENCH_RUNS rounds (default
// 5); within a round every server takes its turn, so drift in the machine's load hits them alike.
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync, rmSync, statSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { cpuGroups } from './bench-cpu.mjs';

const self = fileURLToPath(import.meta.url);
const ROOT = join(self, '../..');

if (!process.argv.includes('--inner')) {
  if (process.getuid?.() !== 0) { console.error('bench:tftp needs root (it runs in its own network namespace)'); process.exit(1); }
  const ns = `${process.env.ROLECAST_NS_PREFIX ?? ''}rcbench${process.pid}`;
  spawnSync('ip', ['netns', 'add', ns]);
  spawnSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  // in.tftpd resolves its -a address with AI_ADDRCONFIG, which fails where only loopback has an
  // address: give the namespace a veth pair of its own (both ends inside, no traffic on it).
  spawnSync('ip', ['-n', ns, 'link', 'add', 'rcb0', 'type', 'veth', 'peer', 'name', 'rcb1']);
  spawnSync('ip', ['-n', ns, 'addr', 'add', '192.0.2.1/30', 'dev', 'rcb0']);
  spawnSync('ip', ['-n', ns, 'link', 'set', 'rcb0', 'up']);
  spawnSync('ip', ['-n', ns, 'link', 'set', 'rcb1', 'up']);
  try {
    const r = spawnSync('ip', ['netns', 'exec', ns, process.execPath, '--import', 'tsx', self, '--inner'], { stdio: 'inherit', cwd: ROOT });
    process.exitCode = r.status ?? 1;
  } finally {
    spawnSync('ip', ['netns', 'delete', ns]);
  }
} else {
  await inner();
}

/** CPU ms of this process's reaped children (atftp), from /proc/self/stat's cutime + cstime (clock ticks, 100/s here). */
function childrenCpuMs() {
  const f = readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ');
  return (Number(f[13]) + Number(f[14])) * 10;
}

/**
 * The client for the three main cases: scripts/tftp-bench-client.c (C, one epoll loop for every transfer,
 * recvmmsg with a window), compiled here. BENCH_TFTP_CLIENT=node uses test/helpers/tftp-client.ts in this
 * process instead (what the figures were before: it spent more CPU per block than the servers, so it set
 * the pace). Resolves with the transfer time in s and the client's CPU in ms.
 */
async function makeClient(dir) {
  if (process.env.BENCH_TFTP_CLIENT === 'node') {
    const { tftpGet } = await import(join(ROOT, 'test/helpers/tftp-client.ts'));
    return {
      name: 'Node (test/helpers/tftp-client.ts)',
      get: async (port, file, n, options) => {
        const u0 = process.cpuUsage();
        const t = process.hrtime.bigint();
        const got = await Promise.all(Array.from({ length: n }, () => tftpGet(port, file, { options, timeoutMs: 1000 })));
        const s = Number(process.hrtime.bigint() - t) / 1e9;
        if (got.some((g) => g.error || g.data.length === 0)) throw new Error(`port ${port}: transfer failed`);
        const u = process.cpuUsage(u0);
        return { s, clientMs: (u.user + u.system) / 1000 };
      },
    };
  }
  const bin = join(dir, 'tftp-bench-client');
  const cc = spawnSync('cc', ['-O2', '-o', bin, join(ROOT, 'scripts/tftp-bench-client.c')], { encoding: 'utf8' });
  if (cc.status !== 0) throw new Error(`cannot build scripts/tftp-bench-client.c (needs cc; BENCH_TFTP_CLIENT=node for the Node client): ${cc.stderr}`);
  return {
    name: 'C (scripts/tftp-bench-client.c)',
    get: (port, file, n, options) => new Promise((resolve, reject) => {
      const args = ['127.0.0.1', String(port), file, '-n', String(n), '-b', options.blksize ?? '512', '-w', options.windowsize ?? '1'];
      const p = spawn(bin, args, { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      p.stdout.on('data', (d) => { out += d; });
      p.on('error', reject);
      p.on('close', (code) => {
        const f = Object.fromEntries(out.trim().split(' ').map((kv) => kv.split('=')));
        if (code !== 0 || Number(f.ok) !== n) return reject(new Error(`port ${port}: ${file} x ${n}: ${out.trim() || `exit ${code}`}`));
        resolve({ s: Number(f.seconds), clientMs: Number(f.cpu_ms) });
      });
    }),
  };
}

async function inner() {
  const dir = mkdtempSync(join(tmpdir(), 'rolecast-bench-'));
  const tftpClient = await makeClient(dir);
  console.log(`client: ${tftpClient.name}`);
  chmodSync(dir, 0o755); // in.tftpd drops to the tftp user
  writeFileSync(join(dir, 'big.bin'), randomBytes(30 * 1024 * 1024));
  writeFileSync(join(dir, 'one.bin'), randomBytes(1024 * 1024));
  const procs = [];
  const cleanups = [];
  const start = (cmd, args) => { const p = spawn(cmd, args, { stdio: 'ignore' }); procs.push(p); return p; };
  const pids = {};
  pids['tftpd-hpa'] = start('in.tftpd', ['-L', '-s', dir, '-a', '127.0.0.1:1069']).pid;
  pids.dnsmasq = start('dnsmasq', ['--no-daemon', '--port=0', '--enable-tftp', `--tftp-root=${dir}`, '--listen-address=127.0.0.1', '--bind-interfaces', '--tftp-max=1000', '--conf-file=/dev/null', '--pid-file=']).pid;
  // rolecast runs in its own process, like the others: the client must not share its event loop.
  pids.rolecast = start(process.execPath, ['--import', 'tsx', join(ROOT, 'scripts/tftp-server.ts'), dir, '2069']).pid;
  procs.push(spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'scripts/tftp-server.ts'), dir, '3069'], { stdio: 'ignore', env: { ...process.env, ROLECAST_BUSY_POLL_US: '0' } }));
  pids['rolecast-nopoll'] = procs.at(-1).pid;
  // The JS sessions (the engine before the native one; still what serves rendered configs), busy-poll on.
  procs.push(spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'scripts/tftp-server.ts'), dir, '4069'], { stdio: 'ignore', env: { ...process.env, ROLECAST_TFTP_ENGINE: 'js' } }));
  pids['rolecast-js'] = procs.at(-1).pid;
  // Server CPU time per round, in ms: the per-packet cost, which a loaded machine's wall clock hides. Each
  // server runs in a cpuacct cgroup of its own, so threads (the native engine) and children (in.tftpd
  // forks one per transfer and lets the kernel reap it) count. `ip netns exec` hides /sys/fs/cgroup:
  // mount the v1 cpuacct hierarchy privately (this mount namespace is ours).
  const cpuMs = cpuGroups(pids, cleanups, 'tftp');
  await new Promise((r) => setTimeout(r, 2500));
  const servers = { rolecast: 2069, 'rolecast-nopoll': 3069, 'rolecast-js': 4069, 'tftpd-hpa': 1069, dnsmasq: 69 };
  const RUNS = Number(process.env.BENCH_RUNS ?? 5);
  const median = (a) => { const x = [...a].sort((p, q) => p - q); return x[Math.floor((x.length - 1) / 2)]; };
  const report = (name, runs, cpu, client) => {
    const res = Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, median(v)]));
    // The client's own CPU per round (the Node client: this process; atftp: its reaped children), per server:
    // when it exceeds the servers', the client sets the pace and the ratio understates the server's difference.
    if (client) console.log(`  client CPU per round (median ms): ${Object.entries(client).map(([k, v]) => `${k} ${median(v).toFixed(0)}`).join(', ')}`);
    if (cpu) console.log(`  server CPU per round (median ms): ${Object.entries(cpu).map(([k, v]) => `${k} ${median(v).toFixed(0)}`).join(', ')}; rolecast/tftpd-hpa CPU ${(median(cpu.rolecast) / median(cpu['tftpd-hpa'])).toFixed(2)} (busy-poll off ${(median(cpu['rolecast-nopoll']) / median(cpu['tftpd-hpa'])).toFixed(2)})`);
    const line = Object.entries(res).map(([k, v]) => `${k} ${v.toFixed(1)} MiB/s`).join(', ');
    console.log(`${name} (median of ${RUNS}, load ${loadavg()[0].toFixed(1)}): ${line}; rolecast/tftpd-hpa ${(res.rolecast / res['tftpd-hpa']).toFixed(2)} (busy-poll off ${(res['rolecast-nopoll'] / res['tftpd-hpa']).toFixed(2)}, JS sessions ${(res['rolecast-js'] / res['tftpd-hpa']).toFixed(2)}), rolecast/dnsmasq ${(res.rolecast / res.dnsmasq).toFixed(2)}`);
  };
  const cases = [
    ['30 MiB, blksize 1468', 'big.bin', 1, { blksize: '1468' }, 30],
    ['30 MiB, blksize 1468, windowsize 16', 'big.bin', 1, { blksize: '1468', windowsize: '16' }, 30],
    ['200 parallel x 1 MiB, blksize 1468', 'one.bin', 200, { blksize: '1468' }, 200],
  ];
  try {
    const atftp = (port, out, window) => new Promise((resolve, reject) => {
      const opts = ['--option', 'blksize 1468', ...(window ? ['--option', `windowsize ${window}`] : [])];
      const p = spawn('atftp', [...opts, '-g', '-r', 'big.bin', '-l', out, '127.0.0.1', String(port)], { stdio: 'ignore' });
      p.on('error', reject);
      p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`atftp exited ${code}`))));
    });
    const viaAtftp = async (port, window) => {
      const out = join(dir, 'atftp.out');
      const t = process.hrtime.bigint();
      await atftp(port, out, window);
      const s = Number(process.hrtime.bigint() - t) / 1e9;
      if (statSync(out).size !== 30 * 1024 * 1024) throw new Error(`atftp from port ${port}: short file`);
      rmSync(out);
      return 30 / s;
    };
    for (const [name, file, n, options, mib] of cases) {
      const runs = Object.fromEntries(Object.keys(servers).map((k) => [k, []]));
      const cpu = Object.fromEntries(Object.keys(servers).map((k) => [k, []]));
      const client = Object.fromEntries(Object.keys(servers).map((k) => [k, []]));
      for (let round = 0; round < RUNS; round++) {
        for (const [server, port] of Object.entries(servers)) {
          const c0 = cpuMs(server);
          const { s, clientMs } = await tftpClient.get(port, file, n, options).catch((err) => { throw new Error(`${server}: ${name}: ${err.message}`); });
          runs[server].push(mib / s);
          client[server].push(clientMs);
          await new Promise((r) => setTimeout(r, 100)); // the last ACK, and in.tftpd's child reaped
          cpu[server].push(cpuMs(server) - c0);
        }
      }
      report(name, runs, cpu, client);
    }
    // atftp (C, like firmware) as the client, lock-step and with windowsize 16 (atftp 0.8 speaks RFC 7440).
    for (const window of [0, 16]) {
      const runs = Object.fromEntries(Object.keys(servers).map((k) => [k, []]));
      const cpu = Object.fromEntries(Object.keys(servers).map((k) => [k, []]));
      const client = Object.fromEntries(Object.keys(servers).map((k) => [k, []]));
      for (let round = 0; round < RUNS; round++) {
        for (const [server, port] of Object.entries(servers)) {
          const c0 = cpuMs(server);
          const a0 = childrenCpuMs();
          runs[server].push(await viaAtftp(port, window));
          client[server].push(childrenCpuMs() - a0);
          await new Promise((r) => setTimeout(r, 100));
          cpu[server].push(cpuMs(server) - c0);
        }
      }
      report(`30 MiB, blksize 1468${window ? `, windowsize ${window}` : ''}, atftp client`, runs, cpu, client);
    }
  } finally {
    for (const p of procs) p.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 500));
    for (const c of cleanups) c();
    rmSync(dir, { recursive: true, force: true });
  }
}
