/**
 * The mission, end to end: blank VMs PXE-boot from `rolecast serve` inside a lab namespace and come up
 * as their role. BIOS: SeaBIOS + QEMU's iPXE NIC ROM → DHCP → HTTP script → kernel + common initramfs
 * → DHCP → per-machine rootfs → switch_root. UEFI: OVMF's own PXE → ipxe.efi over TFTP → iPXE → HTTP.
 * The serial console shows the role and the sha256 of the pre-seeded files, compared with what
 * `rolecast render` gives; the machine's timeline must end in `booted`. Then the role is changed while
 * rolecast runs and the VM, rebooted, comes up as the new role. Evidence (serial logs, server log) stays
 * under test-artifacts/ and its paths are in every failure message.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { cpSync, mkdtempSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createHash } from 'node:crypto';
import { describeSystem, Lab, waitFor } from '../helpers/netns.js';
import { ARTIFACTS, biosPxeArgs, markers, runQemu, uefiPxeArgs } from '../helpers/qemu.js';
import { buildImageTarget } from '../../src/images/index.js';
import { loadInventory, resolveMachine } from '../../src/inventory/index.js';
import { renderMachineFiles } from '../../src/render/index.js';
import { assignRole } from '../../src/inventory/edit.js';
import { readTimeline } from '../../src/events/store.js';

const ROOT = resolve(import.meta.dirname, '../..');
const W101 = '52:54:00:00:02:01';
const W102 = '52:54:00:00:02:02';
const W103 = '52:54:00:00:02:03';
const ctx = { baseUrl: 'http://10.0.0.1:8080', server: '10.0.0.1' };

describeSystem('PXE boot to a role (QEMU, TCG)', ['qemu-system-x86_64', 'tcpdump'], () => {
  const lab = new Lab('e2e');
  const dir = mkdtempSync(join(tmpdir(), 'rolecast-e2e-'));
  const profiles = join(dir, 'profiles');
  const data = join(dir, 'data');
  let ns: string;
  let serverLog = '';
  const serverLogPath = join(ARTIFACTS, `e2e-server-${process.pid}.log`);
  const pcapPath = join(ARTIFACTS, `e2e-${process.pid}.pcap`);
  const evidence = (vmLog: string) => `serial: ${vmLog}; rolecast log: ${serverLogPath}; capture: ${pcapPath}`;

  beforeAll(async () => {
    // Images: the common initramfs + kernel and the busybox test rootfs (fast to build, CI-sized).
    const out = join(dir, 'images/build');
    await buildImageTarget('initramfs', { out });
    await buildImageTarget('test', { out });
    cpSync(join(ROOT, 'profiles'), profiles, { recursive: true });
    // w101 and w102 boot the small test role; test2 is the same image under another role name.
    const machines = readFileSync(join(profiles, 'machines.yaml'), 'utf8')
      .replace('52:54:00:00:12:01], role: web', '52:54:00:00:12:01], role: test')
      .replace('52:54:00:00:12:02], role: web', '52:54:00:00:12:02], role: test')
      .replace('52:54:00:00:12:03], role: web', '52:54:00:00:12:03], role: test, boot: pxelinux');
    writeFileSync(join(profiles, 'machines.yaml'), machines);
    writeFileSync(join(profiles, 'roles/test2.yaml'), readFileSync(join(profiles, 'roles/test.yaml'), 'utf8').replace('name: test', 'name: test2'));
    writeFileSync(join(dir, 'rc.yaml'), `profilesDir: ${profiles}\ndataDir: ${data}\nimagesDir: ${join(dir, 'images')}\naddress: 10.0.0.1\n`);
    ns = lab.ns('s');
    lab.bridge(ns, 'br0');
    lab.addr(ns, 'br0', '10.0.0.1/24');
    for (const tap of ['tap0', 'tap1']) {
      const { spawnSync } = await import('node:child_process');
      spawnSync('ip', ['-n', ns, 'tuntap', 'add', 'dev', tap, 'mode', 'tap']);
      spawnSync('ip', ['-n', ns, 'link', 'set', tap, 'master', 'br0', 'up']);
    }
    mkdirSync(ARTIFACTS, { recursive: true });
    // Every packet on the lab bridge, kept with the serial and server logs as evidence.
    lab.spawn(ns, 'tcpdump', ['-i', 'br0', '-n', '-s', '512', '-U', '-w', pcapPath]);
    const server = lab.spawn(ns, process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli.ts'), 'serve', '--config', join(dir, 'rc.yaml')], { cwd: ROOT });
    mkdirSync(ARTIFACTS, { recursive: true });
    const keep = (d: Buffer) => { serverLog += d.toString(); writeFileSync(serverLogPath, serverLog); };
    server.stdout?.on('data', keep);
    server.stderr?.on('data', keep);
    await waitFor(() => serverLog.includes('rolecast serving'), 30_000);
  }, 120_000);

  afterAll(async () => { await lab.cleanup(); });

  async function expectedHashes(host: string): Promise<Record<string, string>> {
    const inv = await loadInventory(profiles);
    const files = renderMachineFiles(resolveMachine(inv, inv.byHost.get(host)!), inv, ctx);
    return Object.fromEntries(files.map((f) => [f.path, createHash('sha256').update(f.content).digest('hex')]));
  }

  async function bootAndCheck(name: string, args: string[], host: string, mac: string, role: string,
    wantStages = ['dhcp-ack', 'http-script', 'http-kernel', 'http-initrd', 'initramfs', 'http-rootfs']): Promise<void> {
    const since = (await readTimeline(data, mac)).length;
    const vm = await runQemu(name, args, { prefix: ['ip', 'netns', 'exec', ns], timeoutMs: 240_000, until: /rolecast: (test image done|FAILED)/ });
    const m = markers(vm.log);
    expect(m, evidence(vm.logPath)).toContain(`rolecast: booted role=${role} host=${host} hostname=${host}`);
    const want = await expectedHashes(host);
    for (const path of ['/etc/hostname', '/etc/network/interfaces']) {
      expect(m, `${path}: ${evidence(vm.logPath)}`).toContain(`rolecast: booted file ${path} sha256=${want[path]}`);
    }
    const stages = (await readTimeline(data, mac)).slice(since).map((e) => e.stage);
    for (const s of wantStages) expect(stages, evidence(vm.logPath)).toContain(s);
    expect(stages.at(-1), evidence(vm.logPath)).toBe('booted');
  }

  it('BIOS (iPXE NIC ROM) boots w101 as its role', async () => {
    await bootAndCheck('bios-w101', biosPxeArgs({ tap: 'tap0', mac: W101 }), 'w101', W101, 'test');
  }, 300_000);

  it('a role change while rolecast runs takes effect on the next boot', async () => {
    await assignRole(profiles, 'w101', 'test2');
    await waitFor(() => serverLog.includes('profiles reloaded'), 10_000);
    await bootAndCheck('bios-w101-reassigned', biosPxeArgs({ tap: 'tap0', mac: W101 }), 'w101', W101, 'test2');
  }, 300_000);

  it('PXELINUX path: pxelinux.0 over TFTP, pxelinux.cfg/01-<mac> rendered on request, images over TFTP', async () => {
    await bootAndCheck('bios-pxelinux-w103', biosPxeArgs({ tap: 'tap0', mac: W103 }), 'w103', W103, 'test', ['dhcp-ack', 'tftp-loader', 'tftp-config', 'initramfs', 'http-rootfs']);
  }, 300_000);

  it('UEFI (OVMF PXE → ipxe.efi over TFTP → iPXE → HTTP) boots w102 as its role', async () => {
    await bootAndCheck('uefi-w102', uefiPxeArgs({ tap: 'tap1', mac: W102 }, join(dir, 'ovmf')), 'w102', W102, 'test');
    expect(serverLog).toMatch(/"event":"tftp-loader","mac":"52:54:00:00:02:02","detail":"ipxe\.efi"/);
  }, 300_000);
});
