/**
 * Routed and shared provisioning networks with real peers:
 * - ISC dhcrelay between two namespaces: the client behind it gets its reserved lease; replies go to
 *   the relay (giaddr, port 67).
 * - proxy mode beside a real dnsmasq that hands out addresses: the client gets its address from
 *   dnsmasq and its boot file from rolecast (OFFER on 67, ACK on 4011).
 */
import { afterAll, expect, it } from 'vitest';
import { cpSync, mkdtempSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { spawnSync } from 'node:child_process';
import { describeSystem, Lab, waitFor } from '../../helpers/netns.js';

const ROOT = resolve(import.meta.dirname, '../../..');

function ip(args: string[]): void {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr}`);
}

describeSystem('DHCP through a relay and beside dnsmasq', ['dhcrelay', 'dnsmasq', 'busybox'], () => {
  const lab = new Lab('topo');
  afterAll(async () => { await lab.cleanup(); });

  it('a client behind dhcrelay gets its lease', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rolecast-relay-'));
    const profiles = join(dir, 'profiles');
    cpSync(join(ROOT, 'test/fixtures/profiles'), profiles, { recursive: true });
    // A routed segment 10.0.1.0/24 with one reserved machine on it.
    const site = readFileSync(join(profiles, 'rolecast.yaml'), 'utf8').replace('networks:\n', 'networks:\n  - { name: remote, cidr: 10.0.1.0/24, gateway: 10.0.1.1 }\n');
    writeFileSync(join(profiles, 'rolecast.yaml'), site);
    writeFileSync(join(profiles, 'machines.yaml'), `${readFileSync(join(profiles, 'machines.yaml'), 'utf8')}  - { host: r1, mac: [52:54:00:00:05:01, 52:54:00:00:15:01], role: web, ip: 10.0.1.50 }\n`);
    const srv = lab.ns('s');
    const rel = lab.ns('r');
    const cli = lab.ns('c');
    lab.veth(srv, 'rs0', rel, 'ra0');
    lab.veth(rel, 'rb0', cli, 'rc0');
    lab.addr(srv, 'rs0', '10.0.0.1/24');
    lab.addr(rel, 'ra0', '10.0.0.2/24');
    lab.addr(rel, 'rb0', '10.0.1.1/24');
    ip(['-n', srv, 'route', 'add', '10.0.1.0/24', 'via', '10.0.0.2']);
    ip(['-n', rel, 'link', 'set', 'rb0', 'up']);
    ip(['-n', cli, 'link', 'set', 'rc0', 'address', '52:54:00:00:05:01']);
    let log = '';
    const server = lab.spawn(srv, process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli.ts'), 'serve', '--address', '10.0.0.1', '--profiles', profiles, '--data', join(dir, 'data')], { cwd: ROOT });
    server.stdout?.on('data', (d: Buffer) => { log += d.toString(); });
    await waitFor(() => log.includes('rolecast serving'), 30_000);
    const relay = lab.spawn(rel, 'dhcrelay', ['-d', '-4', '-iu', 'ra0', '-id', 'rb0', '10.0.0.1']);
    let relayLog = '';
    relay.stderr?.on('data', (d: Buffer) => { relayLog += d.toString(); });
    await new Promise((r) => setTimeout(r, 1000));
    const script = join(dir, 'u.sh');
    writeFileSync(script, `#!/bin/sh\n[ "$1" = bound ] && env | grep -E '^(ip|siaddr|boot_file|router)=' | sort > ${dir}/lease.env\nexit 0\n`);
    chmodSync(script, 0o755);
    const r = await lab.exec(cli, 'busybox', ['udhcpc', '-i', 'rc0', '-f', '-q', '-n', '-t', '5', '-T', '2', '-s', script, '-V', 'PXEClient:Arch:00000:UNDI:002001', '-x', '93:0000'], { timeoutMs: 40_000 });
    expect(r.code, `${r.stderr}\n${relayLog}\n${log}`).toBe(0);
    const env = readFileSync(join(dir, 'lease.env'), 'utf8');
    expect(env).toContain('ip=10.0.1.50');
    expect(env).toContain('router=10.0.1.1');
    expect(env).toContain('boot_file=undionly.kpxe');
    await waitFor(() => /"event":"dhcp-ack".*"msg":"boot event"/.test(log), 5_000).catch(() => undefined); // events come up to 50 ms after the reply
    expect(log).toMatch(/"event":"dhcp-ack".*"msg":"boot event"/);
  }, 90_000);

  it('proxy mode beside dnsmasq: address from dnsmasq, boot file from rolecast', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rolecast-proxy-'));
    const br = lab.ns('b');
    lab.bridge(br, 'br0');
    const names = { rc: lab.ns('p'), dm: lab.ns('d'), cl: lab.ns('k') };
    const addrs = { rc: '10.0.0.1/24', dm: '10.0.0.2/24', cl: '10.0.0.99/24' };
    for (const [k, ns] of Object.entries(names)) {
      lab.veth(br, `b${k}`, ns, 'e0');
      ip(['-n', br, 'link', 'set', `b${k}`, 'master', 'br0']);
      lab.addr(ns, 'e0', addrs[k as keyof typeof addrs]);
    }
    const dnsmasq = lab.spawn(names.dm, 'dnsmasq', ['--no-daemon', '--port=0', '--conf-file=/dev/null', '--pid-file=', '--dhcp-range=10.0.0.150,10.0.0.160,1h', '--dhcp-leasefile=' + join(dir, 'dnsmasq.leases'), '--interface=e0', '--bind-interfaces']);
    let dmLog = '';
    dnsmasq.stderr?.on('data', (d: Buffer) => { dmLog += d.toString(); });
    let log = '';
    const server = lab.spawn(names.rc, process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli.ts'), 'serve', '--profiles', join(ROOT, 'test/fixtures/profiles'), '--images', join(ROOT, 'images'), '--address', '10.0.0.1', '--dhcp-mode', 'proxy', '--data', join(dir, 'data')], { cwd: ROOT });
    server.stdout?.on('data', (d: Buffer) => { log += d.toString(); });
    await waitFor(() => log.includes('rolecast serving'), 30_000);
    await new Promise((r) => setTimeout(r, 500));
    // One PXE client (the probe: a real PXE ROM takes both offers, which udhcpc cannot).
    const p = await lab.exec(names.cl, process.execPath, ['--import', 'tsx', join(ROOT, 'test/helpers/dhcp-probe.ts'), 'offers', '1', '10.0.0.255'], { timeoutMs: 20_000 });
    const offers = p.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { type: number; from: string; yiaddr: string; bootfile?: string; vendor?: string; server?: string });
    const fromDnsmasq = offers.find((o) => o.type === 2 && o.server === '10.0.0.2');
    const fromRolecast = offers.find((o) => o.type === 2 && o.server === '10.0.0.1');
    expect(fromDnsmasq, `${p.stderr}\n${dmLog}`).toBeDefined();
    expect(fromDnsmasq!.yiaddr).toMatch(/^10\.0\.0\.1(5[0-9]|60)$/);
    expect(fromRolecast, log).toBeDefined();
    expect(fromRolecast).toMatchObject({ yiaddr: '0.0.0.0', bootfile: 'undionly.kpxe', vendor: 'PXEClient' });
    const ack = offers.find((o) => o.type === 5 && o.server === '10.0.0.1');
    expect(ack, 'ACK from the proxy on port 4011').toMatchObject({ yiaddr: '0.0.0.0', bootfile: 'undionly.kpxe', from: '10.0.0.1' });
  }, 90_000);
});
