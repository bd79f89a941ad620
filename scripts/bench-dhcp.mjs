#!/usr/bin/env node
// npm run bench:dhcp — perfdhcp (kea) against rolecast and against dnsmasq, same namespace pair, same run.
// perfdhcp runs as a relay (giaddr = its address) so both servers unicast replies; clients send vendor
// class PXEClient so rolecast's unknown-machine policy hands them pool addresses (the bundled profiles,
// widened to a /16 pool). Cases: 1000 exchanges/s for 10 s (drops), then as fast as each server goes.
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(fileURLToPath(import.meta.url), '../..');
if (process.getuid?.() !== 0) { console.error('bench:dhcp needs root (network namespaces)'); process.exit(1); }
const id = process.pid;
const S = `rcbs${id}`;
const C = `rcbc${id}`;
const ip = (...a) => { const r = spawnSync('ip', a, { encoding: 'utf8' }); if (r.status !== 0) throw new Error(`ip ${a.join(' ')}: ${r.stderr}`); };
const dir = mkdtempSync(join(tmpdir(), 'rolecast-bench-dhcp-'));
const procs = [];

function perfdhcp(rate, seconds) {
  const r = spawnSync('ip', ['netns', 'exec', C, 'perfdhcp', '-4', '-r', String(rate), '-p', String(seconds), '-R', '200000',
    '-o', `60,${Buffer.from('PXEClient:Arch:00000:UNDI:002001').toString('hex')}`, '10.0.0.1'], { encoding: 'utf8', timeout: (seconds + 30) * 1000 });
  const out = r.stdout + r.stderr;
  const rate4 = Number(/Rate: ([0-9.]+) 4-way/.exec(out)?.[1] ?? 0);
  const drops = [...out.matchAll(/^drops: ([0-9]+)/gm)].map((m) => Number(m[1]));
  const sent = Number(/sent packets: ([0-9]+)/.exec(out)?.[1] ?? 0);
  return { rate: rate4, drops: drops.reduce((a, b) => a + b, 0), sent };
}

async function waitLog(p, text) {
  let log = '';
  p.stdout?.on('data', (d) => { log += d; });
  for (let i = 0; i < 300 && !log.includes(text); i++) await new Promise((r) => setTimeout(r, 100));
}

function stop(p) { try { process.kill(-p.pid, 'SIGTERM'); } catch { /* gone */ } }

try {
  for (const n of [S, C]) { ip('netns', 'add', n); ip('-n', n, 'link', 'set', 'lo', 'up'); }
  ip('-n', S, 'link', 'add', 'v1', 'type', 'veth', 'peer', 'name', 'v2', 'netns', C);
  ip('-n', S, 'addr', 'add', '10.0.0.1/16', 'dev', 'v1'); ip('-n', S, 'link', 'set', 'v1', 'up');
  ip('-n', C, 'addr', 'add', '10.0.0.99/16', 'dev', 'v2'); ip('-n', C, 'link', 'set', 'v2', 'up');
  const profiles = join(dir, 'profiles');
  cpSync(join(ROOT, 'profiles'), profiles, { recursive: true });
  const site = readFileSync(join(profiles, 'rolecast.yaml'), 'utf8').replace('cidr: 10.0.0.0/24', 'cidr: 10.0.0.0/16').replace('pool: { start: 10.0.0.200, end: 10.0.0.249 }', 'pool: { start: 10.0.10.0, end: 10.0.200.255 }');
  writeFileSync(join(profiles, 'rolecast.yaml'), site);
  const results = {};
  // dnsmasq rewrites its whole lease file on every change (slower as leases pile up); it is also run
  // with --leasefile-ro (no lease file at all: nothing survives a restart) to show where its ceiling is.
  for (const server of ['rolecast', 'dnsmasq', 'dnsmasq-no-leasefile']) {
    const leaseArg = server === 'dnsmasq' ? `--dhcp-leasefile=${join(dir, 'dnsmasq.leases')}` : '--leasefile-ro';
    const p = server === 'rolecast'
      ? spawn('ip', ['netns', 'exec', S, process.execPath, join(ROOT, 'bin/rolecast.js'), 'serve', '--address', '10.0.0.1', '--profiles', profiles, '--data', join(dir, `data-${server}`)], { detached: true, stdio: ['ignore', 'pipe', 'ignore'], env: { ...process.env } })
      : spawn('ip', ['netns', 'exec', S, 'dnsmasq', '--no-daemon', '--no-ping', '--port=0', '--conf-file=/dev/null', '--pid-file=', '--dhcp-range=10.0.10.0,10.0.200.255,1h', leaseArg, '--interface=v1', '--bind-interfaces', '--dhcp-lease-max=200000', '--log-facility=/dev/null'], { detached: true, stdio: ['ignore', 'pipe', 'ignore'] });
    procs.push(p);
    if (server === 'rolecast') await waitLog(p, 'rolecast serving'); else await new Promise((r) => setTimeout(r, 1000));
    const at1000 = perfdhcp(1000, 10);
    const max = perfdhcp(20000, 10);
    results[server] = { at1000, max };
    stop(p);
    await new Promise((r) => setTimeout(r, 500));
    console.log(`${server}: at 1000/s: ${at1000.rate.toFixed(0)} exchanges/s, ${at1000.drops} drops of ${at1000.sent}; flat out: ${max.rate.toFixed(0)} exchanges/s, ${max.drops} drops`);
  }
  console.log(`ratio rolecast/dnsmasq (flat out, both keep leases on disk): ${(results.rolecast.max.rate / results.dnsmasq.max.rate).toFixed(2)}`);
  console.log(`ratio rolecast/dnsmasq --leasefile-ro (flat out; rolecast still fsyncs every lease): ${(results.rolecast.max.rate / results['dnsmasq-no-leasefile'].max.rate).toFixed(2)}`);
} finally {
  for (const p of procs) stop(p);
  for (const n of [S, C]) spawnSync('ip', ['netns', 'delete', n]);
  rmSync(dir, { recursive: true, force: true });
}
