/**
 * DHCP on its own thread (dhcp.thread: auto, src/dhcp/thread.ts) and on the main thread (off), each through
 * real sockets in namespaces with busybox udhcpc: the reserved address, the lease as the main thread's API
 * shows it (the mirror of the thread's journal), the boot events and the /metrics counts (sent back from the
 * thread), a reload reaching the thread's snapshot, and a retransmitted DISCOVER (same xid, 1 s later) answered from the
 * first answer (one dhcp-discover event, two identical OFFERs).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { chmodSync, cpSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { describeSystem, Lab, waitFor } from '../../helpers/netns.js';

const ROOT = resolve(import.meta.dirname, '../../..');
const W101 = '52:54:00:00:02:01';
const READ = 'r'.repeat(32);

for (const thread of ['auto', 'off'] as const) {
  describeSystem(`DHCP with dhcp.thread: ${thread}`, ['busybox', 'curl'], () => {
    const lab = new Lab(`th${thread.slice(0, 2)}`);
    const dir = mkdtempSync(join(tmpdir(), `rolecast-dhcp-thread-${thread}-`));
    const script = join(dir, 'udhcpc.sh');
    let srv: string;
    let cli: string;
    let proc: ChildProcess;
    let log = '';

    beforeAll(async () => {
      writeFileSync(script, `#!/bin/sh\n[ "$1" = bound ] && env | grep -E '^(ip|boot_file|hostname)=' | sort > ${dir}/udhcpc.env\nexit 0\n`);
      chmodSync(script, 0o755);
      cpSync(join(ROOT, 'test/fixtures/profiles'), join(dir, 'profiles'), { recursive: true });
      const cfg = join(dir, 'rolecast.yaml');
      writeFileSync(cfg, `dhcp:\n  thread: ${thread}\nreload:\n  settleMs: 100\nhttp:\n  tokens:\n    read: ['${READ}']\n`);
      srv = lab.ns('s');
      cli = lab.ns('c');
      lab.veth(srv, 'rs0', cli, 'rc0');
      lab.addr(srv, 'rs0', '10.0.0.1/24');
      proc = lab.spawn(srv, process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli.ts'), 'serve', '--config', cfg, '--profiles', join(dir, 'profiles'),
        '--images', join(ROOT, 'images'), '--address', '10.0.0.1', '--data', join(dir, 'data'), '--http-port', '8080'], { cwd: ROOT });
      proc.stdout?.on('data', (d: Buffer) => { log += d.toString(); });
      proc.stderr?.on('data', (d: Buffer) => { log += d.toString(); });
      await waitFor(() => log.includes('rolecast serving'), 30_000);
    }, 60_000);

    afterAll(async () => { await lab.cleanup(); });

    const setMac = (mac: string) => {
      for (const args of [['link', 'set', 'rc0', 'down'], ['link', 'set', 'rc0', 'address', mac], ['link', 'set', 'rc0', 'up']]) {
        const r = spawnSync('ip', ['-n', cli, ...args]);
        if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr.toString()}`);
      }
    };
    const udhcpc = () => lab.exec(cli, 'busybox', ['udhcpc', '-i', 'rc0', '-f', '-q', '-n', '-t', '5', '-T', '1', '-s', script,
      '-V', 'PXEClient:Arch:00000:UNDI:002001', '-x', '93:0000'], { timeoutMs: 30_000 });
    const api = async (path: string): Promise<string> => {
      const r = await lab.exec(srv, 'curl', ['-sf', '-H', `Authorization: Bearer ${READ}`, `http://10.0.0.1:8080${path}`]);
      expect(r.code, `${path}: ${r.stderr}`).toBe(0);
      return r.stdout;
    };

    it('listens where it was told to', () => {
      const line = log.split('\n').find((l) => l.includes('"msg":"dhcp listening"')) ?? '';
      if (thread === 'auto') expect(line).toContain('"thread":"dhcp"'); else expect(line).not.toContain('"thread"');
      // dhcp.threadNice (-10 by default; root here): the DHCP thread alone runs at it.
      const nices = readdirSync(`/proc/${proc.pid}/task`).map((t) => Number(readFileSync(`/proc/${proc.pid}/task/${t}/stat`, 'utf8').split(') ')[1]!.split(' ')[16]));
      expect(nices.filter((n) => n === -10)).toHaveLength(thread === 'auto' ? 1 : 0);
    });

    it('udhcpc gets its reserved address; the lease, its events and the counts reach the main thread', async () => {
      setMac(W101);
      const r = await udhcpc();
      expect(r.code, r.stderr + log).toBe(0);
      expect(readFileSync(join(dir, 'udhcpc.env'), 'utf8')).toContain('ip=10.0.0.101');
      // The ACK's lease is on the API at once (the mirror is fed before or with the reply).
      const leases = JSON.parse(await api('/api/leases')) as Array<{ mac: string; ip: string; state: string }>;
      expect(leases.find((l) => l.mac === W101)).toMatchObject({ ip: '10.0.0.101', state: 'bound' });
      await waitFor(async () => (JSON.parse(await api(`/api/machines/${W101}/events`)) as Array<{ stage: string }>).some((e) => e.stage === 'dhcp-ack'), 5_000);
      const m = await api('/metrics');
      expect(m).toMatch(/^rolecast_dhcp_requests_total\{type="discover"\} [1-9]/m);
      expect(m).toMatch(/^rolecast_dhcp_requests_total\{type="request"\} [1-9]/m);
      expect(m).toMatch(/^rolecast_dhcp_handle_seconds_count [2-9]/m);
    });

    it('a reload reaches the answers', async () => {
      const file = join(dir, 'profiles/machines.yaml');
      writeFileSync(file, readFileSync(file, 'utf8').replace('ip: 10.0.0.101,', 'ip: 10.0.0.151,'));
      setMac(W101);
      let got = '';
      await waitFor(async () => {
        const r = await udhcpc();
        got = r.code === 0 ? readFileSync(join(dir, 'udhcpc.env'), 'utf8') : '';
        return got.includes('ip=10.0.0.151');
      }, 20_000, 200);
      expect(got).toContain('hostname=w101');
    }, 30_000);

    it('a DISCOVER sent again with the same xid gets the first answer again, recorded once', async () => {
      lab.addr(cli, 'rc0', '10.0.0.99/24'); // the probe sends to the subnet broadcast, as the durability test's does
      const child = lab.spawn(cli, process.execPath, ['--import', 'tsx', join(ROOT, 'test/helpers/dhcp-probe.ts'), 'repeat', '2', '10.0.0.255'], { cwd: ROOT });
      const probe = { stdout: '', stderr: '' };
      child.stdout?.on('data', (d: Buffer) => { probe.stdout += d.toString(); });
      child.stderr?.on('data', (d: Buffer) => { probe.stderr += d.toString(); });
      await new Promise((r) => child.once('exit', r));
      const offers = probe.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { type: number; mac: string; yiaddr: string });
      for (const mac of ['52:54:00:77:00:00', '52:54:00:77:00:01']) {
        const mine = offers.filter((o) => o.mac === mac && o.type === 2);
        expect(mine, probe.stderr).toHaveLength(2);
        expect(mine[1]!.yiaddr).toBe(mine[0]!.yiaddr);
        const events = JSON.parse(await api(`/api/machines/${mac}/events`)) as Array<{ stage: string }>;
        expect(events.filter((e) => e.stage === 'dhcp-discover')).toHaveLength(1);
      }
    });
  });
}
