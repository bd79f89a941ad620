/**
 * Unicast replies (RFC 2131 §4.1) on a bridge: rolecast in one namespace, a client (busybox udhcpc) and a
 * bystander in two others. A client that clears the broadcast bit gets its OFFER/ACK unicast to yiaddr after
 * rolecast added the ARP entry (the bystander's tcpdump sees nothing); with -B (broadcast bit set, like
 * OVMF's PXE) the bystander sees the limited broadcast. Without CAP_NET_ADMIN (setpriv drops it) rolecast
 * says so once and broadcasts.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { describeSystem, Lab, waitFor } from '../../helpers/netns.js';

const ROOT = resolve(import.meta.dirname, '../../..');
const W101 = '52:54:00:00:02:01';

function ip(args: string[]): string {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

describeSystem('DHCP unicast replies to clients that clear the broadcast bit', ['busybox', 'tcpdump', 'setpriv'], () => {
  const lab = new Lab('ucst');
  const dir = mkdtempSync(join(tmpdir(), 'rolecast-unicast-'));
  const script = join(dir, 'udhcpc.sh');
  let srv: string;
  let cli: string;
  let bys: string;

  beforeAll(() => {
    writeFileSync(script, `#!/bin/sh\n[ "$1" = bound ] && echo "ip=$ip" > ${dir}/lease.env\nexit 0\n`);
    chmodSync(script, 0o755);
    const br = lab.ns('b');
    lab.bridge(br, 'br0');
    srv = lab.ns('s');
    cli = lab.ns('c');
    bys = lab.ns('y');
    for (const [k, ns] of [['s', srv], ['c', cli], ['y', bys]] as const) {
      lab.veth(br, `b${k}`, ns, 'e0');
      ip(['-n', br, 'link', 'set', `b${k}`, 'master', 'br0']);
    }
    lab.addr(srv, 'e0', '10.0.0.1/24');
    ip(['-n', cli, 'link', 'set', 'e0', 'address', W101]);
  });

  afterAll(async () => { await lab.cleanup(); });

  /** rolecast serve in the server namespace (optionally behind a command prefix such as setpriv). */
  async function serve(prefix: string[]): Promise<{ proc: ChildProcess; log: () => string }> {
    let log = '';
    const cmd = [...prefix, process.execPath, '--import', 'tsx', join(ROOT, 'src/cli.ts'), 'serve', '--profiles', join(ROOT, 'test/fixtures/profiles'),
      '--images', join(ROOT, 'images'), '--address', '10.0.0.1', '--data', join(dir, `data-${prefix.length}`), '--http-port', '8080'];
    const proc = lab.spawn(srv, cmd[0]!, cmd.slice(1), { cwd: ROOT });
    proc.stdout?.on('data', (d: Buffer) => { log += d.toString(); });
    proc.stderr?.on('data', (d: Buffer) => { log += d.toString(); });
    await waitFor(() => log.includes('rolecast serving'), 30_000);
    return { proc, log: () => log };
  }

  /** DHCP replies (source port 67) the bystander's link sees while fn runs. */
  async function bystanderSees(fn: () => Promise<void>): Promise<string> {
    let out = '';
    let err = '';
    const dump = lab.spawn(bys, 'tcpdump', ['-i', 'e0', '-n', '-e', '-l', '-p', 'udp and src port 67']);
    dump.stdout?.on('data', (d: Buffer) => { out += d.toString(); });
    dump.stderr?.on('data', (d: Buffer) => { err += d.toString(); });
    await waitFor(() => err.includes('listening on'), 10_000);
    try {
      await fn();
      await new Promise((r) => setTimeout(r, 300)); // the last reply's frame reaches the capture
    } finally {
      lab.kill(dump);
    }
    return out;
  }

  async function udhcpc(extra: string[]): Promise<void> {
    const r = await lab.exec(cli, 'busybox', ['udhcpc', '-i', 'e0', '-f', '-q', '-n', '-t', '5', '-T', '1', '-s', script,
      '-V', 'PXEClient:Arch:00000:UNDI:002001', '-x', '93:0000', ...extra], { timeoutMs: 30_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(join(dir, 'lease.env'), 'utf8')).toContain('ip=10.0.0.101');
  }

  it('broadcast bit clear: unicast after the ARP entry, the bystander sees nothing; bit set: limited broadcast', async () => {
    const s = await serve([]);
    try {
      expect(s.log()).toMatch(/"interface":"e0".*dhcp: unicast replies to clients that clear the broadcast bit/);
      const quiet = await bystanderSees(() => udhcpc([]));
      expect(quiet, 'a unicast reply must not reach the bystander').toBe('');
      expect(ip(['-n', srv, 'neigh', 'show', '10.0.0.101', 'dev', 'e0'])).toContain(`lladdr ${W101}`);
      ip(['-n', srv, 'neigh', 'flush', 'dev', 'e0']);
      const loud = await bystanderSees(() => udhcpc(['-B']));
      expect(loud).toMatch(/10\.0\.0\.1\.67 > 255\.255\.255\.255\.68/);
      expect(loud).toMatch(/> ff:ff:ff:ff:ff:ff/);
    } finally {
      lab.kill(s.proc);
    }
  }, 90_000);

  it('without CAP_NET_ADMIN: said once at info, the bit-clear client still gets its lease (broadcast)', async () => {
    ip(['-n', srv, 'neigh', 'flush', 'dev', 'e0']);
    const s = await serve(['setpriv', '--inh-caps=-net_admin', '--bounding-set=-net_admin', '--']);
    try {
      expect(s.log()).toMatch(/no CAP_NET_ADMIN.*dhcp: replies to clients without an address are broadcast/);
      const seen = await bystanderSees(() => udhcpc([]));
      expect(seen).toMatch(/10\.0\.0\.1\.67 > 255\.255\.255\.255\.68/);
    } finally {
      lab.kill(s.proc);
    }
  }, 90_000);
});
