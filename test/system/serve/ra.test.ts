/**
 * Router advertisements from `rolecast serve` (src/ra.ts, radvd as its child) inside a lab: a client in
 * the peer namespace sends a router solicitation the way iPXE does and must get an RA that announces
 * nothing — router lifetime 0, M and O off, no prefix information — from the provisioning link only;
 * with `ra.enabled: false` nothing answers. Stopping serve stops radvd.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync, existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { describeSystem, Lab, waitFor } from '../../helpers/netns.js';

const ROOT = resolve(import.meta.dirname, '../../..');

// Sends one RS to ff02::2 from rc1 and prints the first RA heard within 4 s as JSON (or null).
const SOLICIT = `
import json, select, socket, struct, time
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
s.sendto(bytes([133, 0, 0, 0, 0, 0, 0, 0]), ('ff02::2', 0, 0, socket.if_nametoindex('rc1')))
end = time.time() + 4
while time.time() < end:
    r, _, _ = select.select([s], [], [], max(0, end - time.time()))
    if not r: break
    data, addr = s.recvfrom(2048)
    if data[0] != 134: continue
    hop, flags, lifetime = data[4], data[5], struct.unpack('!H', data[6:8])[0]
    opts, i = [], 16
    while i + 2 <= len(data) and data[i + 1]:
        opts.append(data[i]); i += data[i + 1] * 8
    print(json.dumps({'from': addr[0], 'managed': bool(flags & 0x80), 'other': bool(flags & 0x40), 'lifetime': lifetime, 'options': opts}))
    raise SystemExit(0)
print('null')
`;

describeSystem('router advertisements for iPXE (radvd under rolecast serve)', ['radvd', 'python3'], () => {
  const lab = new Lab('ra');
  let srv: string;
  let cli: string;
  const out = mkdtempSync(join(tmpdir(), 'rolecast-ra-'));
  const procs: ChildProcess[] = [];
  let log = '';

  async function serve(name: string, extra: string[]): Promise<ChildProcess> {
    const cfg = join(out, `${name}.yaml`);
    writeFileSync(cfg, [`profilesDir: ${join(ROOT, 'test/fixtures/profiles')}`, `dataDir: ${join(out, name)}`, `imagesDir: ${join(out, 'images')}`, 'address: 10.0.0.1', 'user: root',
      'tftp: { enabled: false }', 'http: { port: 18080 }', 'dhcp: { port: 10067, proxyPort: 14011 }', ...extra, ''].join('\n'));
    const p = lab.spawn(srv, process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli.ts'), 'serve', '--config', cfg], { cwd: ROOT });
    p.stdout?.on('data', (d: Buffer) => { log += d.toString(); });
    p.stderr?.on('data', (d: Buffer) => { log += d.toString(); });
    procs.push(p);
    await waitFor(() => log.includes('rolecast serving'), 30_000);
    return p;
  }

  beforeAll(() => {
    srv = lab.ns('s');
    cli = lab.ns('c');
    // The address on a bridge, as in a real lab; its port (the veth) is added only after serve starts,
    // so at start the bridge has no carrier (Node's networkInterfaces() does not list it then).
    lab.bridge(srv, 'br0');
    lab.addr(srv, 'br0', '10.0.0.1/24');
    lab.veth(srv, 'rc0', cli, 'rc1');
    lab.addr(cli, 'rc1', '10.0.0.101/24');
    writeFileSync(join(out, 'solicit.py'), SOLICIT);
  });

  afterAll(async () => { await lab.cleanup(); });

  it('answers a router solicitation with an RA that announces no router, prefix or DHCPv6', async () => {
    const p = await serve('on', []);
    await lab.exec(srv, 'ip', ['link', 'set', 'rc0', 'master', 'br0']);
    // The link-local addresses need DAD (~1-2 s) before radvd can send from rc0.
    let ra: { from: string; managed: boolean; other: boolean; lifetime: number; options: number[] } | null = null;
    await waitFor(async () => {
      const r = await lab.exec(cli, 'python3', [join(out, 'solicit.py')], { timeoutMs: 10_000 });
      ra = JSON.parse(r.stdout.trim() || 'null') as typeof ra;
      return ra !== null;
    }, 20_000, 500).catch(() => { throw new Error(`no RA heard; serve log:\n${log}`); });
    expect(ra!.from).toMatch(/^fe80::/);
    expect(ra!.lifetime).toBe(0);
    expect(ra!.managed).toBe(false);
    expect(ra!.other).toBe(false);
    expect(ra!.options).not.toContain(3); // no prefix information option
    expect(log).toMatch(/router advertisements on/);
    const pid = Number(readFileSync(join(out, 'on', 'radvd', 'radvd.pid'), 'utf8'));
    lab.kill(p, 'SIGTERM');
    await waitFor(() => p.exitCode !== null || p.signalCode !== null, 10_000);
    await waitFor(() => { try { process.kill(pid, 0); return false; } catch { return true; } }, 10_000);
  }, 60_000);

  it('radvd ends with a server that is killed outright (SIGKILL)', async () => {
    log = '';
    const p = await serve('killed', []);
    await waitFor(() => existsSync(join(out, 'killed', 'radvd', 'radvd.pid')), 10_000);
    const pid = Number(readFileSync(join(out, 'killed', 'radvd', 'radvd.pid'), 'utf8'));
    lab.kill(p, 'SIGKILL');
    await waitFor(() => { try { process.kill(pid, 0); return false; } catch { return true; } }, 10_000);
  }, 60_000);

  it('sends nothing with ra.enabled: false', async () => {
    log = '';
    await serve('off', ['ra: { enabled: false }']);
    await lab.exec(srv, 'ip', ['link', 'set', 'rc0', 'master', 'br0']);
    const r = await lab.exec(cli, 'python3', [join(out, 'solicit.py')], { timeoutMs: 10_000 });
    expect(r.stdout.trim()).toBe('null');
    expect(existsSync(join(out, 'off', 'radvd'))).toBe(false);
  }, 60_000);
});
