/**
 * rolecast serve (authoritative DHCP) in one namespace, real clients in another, over a veth:
 * busybox udhcpc (as a PXE-like client: vendor class PXEClient, option 93) and ISC dhclient
 * (lease, renew, release). An unknown MAC follows the bundled policy (boot rescue: a pool address).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync, chmodSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { describeSystem, Lab, waitFor } from '../../helpers/netns.js';

const ROOT = resolve(import.meta.dirname, '../../..');
const W101 = '52:54:00:00:02:01';
const DB1 = '52:54:00:00:03:01';

describeSystem('DHCP with real clients (udhcpc, dhclient)', ['busybox', 'dhclient'], () => {
  const lab = new Lab('dhcp');
  const dir = mkdtempSync(join(tmpdir(), 'rolecast-dhcp-'));
  let srv: string;
  let cli: string;
  let proc: ChildProcess;
  let log = '';
  // udhcpc hands the lease to a script in its environment; this one writes it out for the test.
  const script = join(dir, 'udhcpc.sh');

  beforeAll(async () => {
    writeFileSync(script, `#!/bin/sh\n[ "$1" = bound ] && env | grep -E '^(ip|siaddr|boot_file|subnet|router|hostname|domain|serverid|lease|tftp|bootfile)=' | sort > ${dir}/udhcpc-$interface.env\nexit 0\n`);
    chmodSync(script, 0o755);
    srv = lab.ns('s');
    cli = lab.ns('c');
    lab.veth(srv, 'rs0', cli, 'rc0');
    lab.addr(srv, 'rs0', '10.0.0.1/24');
    proc = lab.spawn(srv, process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli.ts'), 'serve', '--profiles', join(ROOT, 'test/fixtures/profiles'), '--images', join(ROOT, 'images'), '--address', '10.0.0.1', '--data', join(dir, 'data'), '--http-port', '8080'], { cwd: ROOT });
    proc.stdout?.on('data', (d: Buffer) => { log += d.toString(); });
    proc.stderr?.on('data', (d: Buffer) => { log += d.toString(); });
    await waitFor(() => log.includes('rolecast serving'), 30_000);
  }, 60_000);

  afterAll(async () => { await lab.cleanup(); });

  function setMac(mac: string): void {
    const r = require_ip(['-n', cli, 'link', 'set', 'rc0', 'down']);
    void r;
    require_ip(['-n', cli, 'link', 'set', 'rc0', 'address', mac]);
    require_ip(['-n', cli, 'link', 'set', 'rc0', 'up']);
  }

  it('udhcpc as a BIOS PXE client gets the reserved address and the boot fields', async () => {
    setMac(W101);
    const r = await lab.exec(cli, 'busybox', ['udhcpc', '-i', 'rc0', '-f', '-q', '-n', '-t', '5', '-T', '1', '-s', script,
      '-V', 'PXEClient:Arch:00000:UNDI:002001', '-x', '93:0000', '-O', 'bootfile', '-O', 'tftp'], { timeoutMs: 30_000 });
    expect(r.code, r.stderr + log).toBe(0);
    const env = readFileSync(join(dir, 'udhcpc-rc0.env'), 'utf8');
    expect(env).toContain('ip=10.0.0.101');
    expect(env).toContain('siaddr=10.0.0.1');
    expect(env).toContain('boot_file=undionly.kpxe');
    expect(env).toContain('subnet=255.255.255.0');
    expect(env).toContain('router=10.0.0.254');
    expect(env).toContain('hostname=w101');
    // One info line per boot stage: the ACK's boot event (offers and requests are debug). Boot events reach
    // the main thread (and its log) up to 50 ms after the reply: waited for.
    await waitFor(() => /"event":"dhcp-ack".*"address":"10\.0\.0\.101".*"msg":"boot event"/.test(log), 5_000).catch(() => undefined);
    expect(log).toMatch(/"event":"dhcp-ack".*"address":"10\.0\.0\.101".*"msg":"boot event"/);
    expect(log).not.toMatch(/"event":"dhcp-(discover|offer|request)"/);
  });

  it('udhcpc as UEFI x64 (arch 7) gets snponly.efi; as iPXE it gets the HTTP script, never the loader', async () => {
    setMac(W101);
    let r = await lab.exec(cli, 'busybox', ['udhcpc', '-i', 'rc0', '-f', '-q', '-n', '-t', '5', '-T', '1', '-s', script, '-V', 'PXEClient:Arch:00007:UNDI:003000', '-x', '93:0007'], { timeoutMs: 30_000 });
    expect(r.code).toBe(0);
    expect(readFileSync(join(dir, 'udhcpc-rc0.env'), 'utf8')).toContain('boot_file=snponly.efi');
    r = await lab.exec(cli, 'busybox', ['udhcpc', '-i', 'rc0', '-f', '-q', '-n', '-t', '5', '-T', '1', '-s', script, '-V', 'PXEClient:Arch:00000:UNDI:002001', '-x', '93:0000', '-x', '77:69505845'], { timeoutMs: 30_000 });
    expect(r.code).toBe(0);
    expect(readFileSync(join(dir, 'udhcpc-rc0.env'), 'utf8')).toContain(`boot_file=http://10.0.0.1:8080/boot/${W101}.ipxe?arch=0`);
  });

  it('an unknown MAC follows the policy: the bundled one boots rescue from the pool, PXE ROM and initramfs alike', async () => {
    setMac('52:54:00:aa:bb:cc');
    const r = await lab.exec(cli, 'busybox', ['udhcpc', '-i', 'rc0', '-f', '-q', '-n', '-t', '5', '-T', '1', '-s', script, '-V', 'PXEClient:Arch:00000:UNDI:002001', '-x', '93:0000'], { timeoutMs: 30_000 });
    expect(r.code).toBe(0);
    const pxeIp = /ip=(10\.0\.0\.2[0-4][0-9])/.exec(readFileSync(join(dir, 'udhcpc-rc0.env'), 'utf8'))?.[1];
    expect(pxeIp).toBeDefined();
    // The same box's initramfs asks again without PXE options (as udhcpc in the common initramfs does):
    // it gets the same pool address, so its rootfs fetch comes from the address rolecast leased it.
    const n = await lab.exec(cli, 'busybox', ['udhcpc', '-i', 'rc0', '-f', '-q', '-n', '-t', '5', '-T', '1', '-s', script], { timeoutMs: 30_000 });
    expect(n.code).toBe(0);
    expect(readFileSync(join(dir, 'udhcpc-rc0.env'), 'utf8')).toContain(`ip=${pxeIp}`);
  });

  it('dhclient gets its lease, renews and releases', async () => {
    setMac(DB1);
    const leaseFile = join(dir, 'dhclient.leases');
    const pidFile = join(dir, 'dhclient.pid');
    const base = ['-4', '-v', '-lf', leaseFile, '-pf', pidFile, '-sf', '/bin/true'];
    // dhclient -1 goes to the background once bound: end the daemon this test started (by its PID file),
    // or it outlives the test and its namespace.
    // The parent returns when the lease is bound; the daemon may write its PID file a moment later, so
    // wait for it after a run that left a daemon (a missed file leaked one dhclient per run).
    let daemon = false;
    const stopDaemon = async () => {
      if (!daemon) return;
      daemon = false;
      await waitFor(() => existsSync(pidFile), 3_000).catch(() => undefined);
      if (!existsSync(pidFile)) return;
      const pid = Number(readFileSync(pidFile, 'utf8').trim());
      if (Number.isInteger(pid) && pid > 1) { try { process.kill(pid, 'SIGTERM'); } catch { /* already gone */ } }
      rmSync(pidFile, { force: true });
    };
    try {
      let r = await lab.exec(cli, 'dhclient', [...base, '-1', 'rc0'], { timeoutMs: 40_000 });
      daemon = r.code === 0;
      expect(r.code, r.stderr).toBe(0);
      expect(readFileSync(leaseFile, 'utf8')).toContain('fixed-address 10.0.0.31;');
      expect(r.stderr).toMatch(/DHCPACK of 10\.0\.0\.31 from 10\.0\.0\.1/);
      // Renew: a REQUEST with ciaddr from the bound client (the address must be on the interface).
      lab.addr(cli, 'rc0', '10.0.0.31/24');
      await stopDaemon();
      r = await lab.exec(cli, 'dhclient', [...base, '-1', 'rc0'], { timeoutMs: 40_000 });
      daemon = r.code === 0;
      expect(r.stderr).toMatch(/DHCPACK of 10\.0\.0\.31/);
      r = await lab.exec(cli, 'dhclient', [...base, '-r', 'rc0'], { timeoutMs: 40_000 });
      if (r.code === 0) daemon = false; // -r ends the daemon its PID file names
      expect(r.code).toBe(0);
      await waitFor(() => log.includes('"event":"dhcp-release","mac":"52:54:00:00:03:01"'));
      const leases = readFileSync(join(dir, 'data', 'leases.jsonl'), 'utf8');
      expect(leases).toMatch(/"mac":"52:54:00:00:03:01","ip":"10\.0\.0\.31","state":"released"/);
    } finally {
      await stopDaemon();
    }
  });

  it('a stream of malformed packets leaves the server answering', async () => {
    const junk = ['', '01', 'ff'.repeat(300), `0101060000000000${'00'.repeat(228)}63825363${'35'}`, `0101060000000000${'00'.repeat(228)}63825363${'3501'.repeat(200)}`];
    const sender = `const d=require('dgram').createSocket('udp4');d.bind(()=>{d.setBroadcast(true);const j=${JSON.stringify(junk)};let n=0;for(let k=0;k<200;k++)for(const h of j){d.send(Buffer.from(h,'hex'),67,'10.0.0.1',()=>{if(++n===200*j.length)d.close();});}});`;
    setMac(W101);
    lab.addr(cli, 'rc0', '10.0.0.77/24');
    const s = await lab.exec(cli, process.execPath, ['-e', sender], { timeoutMs: 20_000 });
    expect(s.code, s.stderr).toBe(0);
    const r = await lab.exec(cli, 'busybox', ['udhcpc', '-i', 'rc0', '-f', '-q', '-n', '-t', '5', '-T', '1', '-s', script, '-V', 'PXEClient:Arch:00000:UNDI:002001', '-x', '93:0000'], { timeoutMs: 30_000 });
    expect(r.code).toBe(0);
    expect(proc.exitCode).toBeNull();
  });
});

import { spawnSync } from 'node:child_process';
function require_ip(args: string[]): void {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr}`);
}
