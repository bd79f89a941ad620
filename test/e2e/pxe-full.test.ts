/**
 * The whole chain, as a blank machine sees it: rolecast (`rolecast serve`, real DHCP + TFTP + HTTP) runs
 * inside a lab namespace on a bridge; QEMU VMs with lb1's and w101's MACs (profiles/machines.yaml)
 * network-boot from it:
 * - lb1, BIOS: SeaBIOS + the e1000 option ROM (iPXE) → DHCP → HTTP /boot/<mac>.ipxe → kernel + initramfs;
 * - w101, UEFI: OVMF's own PXE (virtio-net, no ROM) → ipxe.efi over TFTP → iPXE → HTTP → kernel + initramfs;
 * then the initramfs DHCPs, fetches /rootfs/<mac>.tar (role base + the machine's generated files)
 * and switch_roots. In CI the role bases lb.tar and web.tar are the busybox test image (a symlink in
 * a temp images dir), so each boot takes seconds after the kernel starts; the files that matter are
 * the ones rolecast generates, whose hashes must equal `rolecast render --json`.
 * Then w101 is reassigned (`rolecast assign w101 test`) while rolecast runs and reboots (BIOS, the
 * faster path) as the new role.
 *
 * Runs in CI: about 2.5 min of TCG on a 2-core machine.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describeSystem, Lab, waitFor } from '../helpers/netns.js';
import { biosPxeArgs, markers, runQemu, uefiPxeArgs, type VmResult } from '../helpers/qemu.js';
import { buildInitramfs } from '../../src/images/initramfs.js';
import { buildTestImage } from '../../src/images/testimage.js';

const ROOT = resolve(import.meta.dirname, '../..');
const SERVER = '10.0.0.1';
const BASE = `http://${SERVER}:8080`;
const LB1 = { host: 'lb1', mac: '52:54:00:00:01:01', ip: '10.0.0.11', role: 'lb' };
const W101 = { host: 'w101', mac: '52:54:00:00:02:01', ip: '10.0.0.101', role: 'web' };
const W102 = { host: 'w102', mac: '52:54:00:00:02:02', ip: '10.0.0.102', role: 'web' };
const W104 = { host: 'w104', mac: '52:54:00:00:02:04', ip: '10.0.0.104', role: 'web' };
const DONE = /rolecast: test image done|rolecast: FAILED|Kernel panic|end Kernel panic/;

// Part of every run (CI included): about 2.5 min of TCG on a 2-core machine.
const suite = describeSystem;

function sh(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', cwd: ROOT });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

interface TimelineEvent { stage: string; detail?: string }

suite('PXE boot from rolecast: BIOS (iPXE ROM) and UEFI (OVMF → ipxe.efi) VMs reach their roles', ['qemu-system-x86_64', 'ip', 'curl'], () => {
  const lab = new Lab('pxe');
  const dir = mkdtempSync(join(tmpdir(), 'rolecast-e2e-pxe-'));
  const cfgFile = join(dir, 'rolecast.yaml');
  let ns = '';
  let server: ChildProcess | undefined;
  let serverLog = '';

  beforeAll(async () => {
    const build = join(dir, 'images', 'build');
    await buildInitramfs({ out: build });
    await buildTestImage(build);
    for (const role of ['lb', 'web']) symlinkSync('test.tar', join(build, 'rootfs', `${role}.tar`));
    cpSync(join(ROOT, 'profiles'), join(dir, 'profiles'), { recursive: true });
    // w102 boots through PXELINUX instead of iPXE (a per-machine boot method).
    const machines = join(dir, 'profiles', 'machines.yaml');
    const text = readFileSync(machines, 'utf8');
    const w102 = /^(\s*- \{ host: w102,.*)( \})$/m;
    if (!w102.test(text)) throw new Error('profiles/machines.yaml: no w102 line to add "boot: pxelinux" to');
    // w104 is sent to the disk wipe once, and confirms it.
    const w104 = /^(\s*- \{ host: w104,.*)( \})$/m;
    if (!w104.test(text)) throw new Error('profiles/machines.yaml: no w104 line to add "boot_once: wipe" to');
    writeFileSync(machines, text.replace(w102, '$1, boot: pxelinux$2').replace(w104, '$1, boot_once: wipe, confirm_wipe: true$2'));
    mkdirSync(join(dir, 'data'));
    writeFileSync(cfgFile, [
      `profilesDir: ${join(dir, 'profiles')}`, `dataDir: ${join(dir, 'data')}`, `imagesDir: ${join(dir, 'images')}`,
      `address: ${SERVER}`, 'logLevel: debug', '',
    ].join('\n'));

    ns = lab.ns('pxe');
    lab.bridge(ns, 'br0');
    lab.addr(ns, 'br0', `${SERVER}/24`);
    for (const tap of ['tap0', 'tap1']) {
      sh('ip', ['-n', ns, 'tuntap', 'add', 'dev', tap, 'mode', 'tap']);
      sh('ip', ['-n', ns, 'link', 'set', tap, 'master', 'br0', 'up']);
    }
    server = lab.spawn(ns, 'node', ['--import', 'tsx', join(ROOT, 'src/cli.ts'), 'serve', '--config', cfgFile], { cwd: ROOT });
    server.stdout?.on('data', (d: Buffer) => { serverLog += d.toString(); });
    server.stderr?.on('data', (d: Buffer) => { serverLog += d.toString(); });
    await waitFor(() => serverLog.includes('rolecast serving') || server?.exitCode !== null, 30_000);
    if (!serverLog.includes('rolecast serving')) throw new Error(`rolecast did not start:\n${serverLog}`);
  }, 120_000);

  afterAll(async () => {
    await lab.cleanup();
    mkdirSync(join(ROOT, 'test-artifacts'), { recursive: true });
    const kept = join(ROOT, 'test-artifacts', `pxe-full-${process.pid}.rolecast.log`);
    writeFileSync(kept, serverLog);
    console.log(`rolecast log kept at ${kept}`);
    rmSync(dir, { recursive: true, force: true });
  });

  async function timeline(mac: string): Promise<TimelineEvent[]> {
    const r = await lab.exec(ns, 'curl', ['-sf', `${BASE}/api/machines/${mac}/events`]);
    expect(r.code, r.stderr).toBe(0);
    const body = JSON.parse(r.stdout) as TimelineEvent[] | { events: TimelineEvent[] };
    return Array.isArray(body) ? body : body.events;
  }

  function rendered(host: string): Map<string, string> {
    const out = JSON.parse(sh('node', ['--import', 'tsx', 'src/cli.ts', 'render', host, '--json', '--config', cfgFile])) as { files: { path: string; sha256: string }[] };
    return new Map(out.files.map((f) => [f.path, f.sha256]));
  }

  /** iPXE fetches script, kernel and initrd over HTTP; PXELINUX gets its config and both over TFTP. */
  const CHAIN = {
    ipxe: ['dhcp-discover', 'dhcp-ack', 'http-script', 'http-kernel', 'http-initrd', 'http-rootfs', 'initramfs'],
    pxelinux: ['dhcp-discover', 'dhcp-ack', 'tftp-loader', 'tftp-config', 'tftp-file', 'http-rootfs', 'initramfs'],
  };

  async function expectRole(vm: VmResult, m: { host: string; mac: string; ip: string }, role: string, chain: keyof typeof CHAIN = 'ipxe'): Promise<void> {
    const evidence = `serial log: ${vm.logPath}; rolecast log in test-artifacts/pxe-full-${process.pid}.rolecast.log`;
    const lines = markers(vm.log);
    const want = (s: string) => expect(lines, `${s}\n${evidence}`).toContain(s);
    want(`rolecast: stage cmdline url=${BASE} mac=${m.mac} host=${m.host} role=${role} action=boot`);
    want(`rolecast: booted role=${role} host=${m.host} hostname=${m.host}`);
    want(`rolecast: booted addr ${m.ip}/24`);
    want('rolecast: phone-home booted ok');
    const files = rendered(m.host);
    for (const path of ['/etc/hostname', '/etc/network/interfaces', '/etc/keepalived/keepalived.conf']) {
      const sha = files.get(path);
      if (sha) want(`rolecast: booted file ${path} sha256=${sha}`);
      else expect(lines.some((l) => l.includes(`file ${path} `)), evidence).toBe(false);
    }
    const stages = (await timeline(m.mac)).map((e) => e.stage);
    for (const s of CHAIN[chain]) {
      expect(stages, `${s} in timeline ${stages.join(',')}; ${evidence}`).toContain(s);
    }
    expect(stages.at(-1), evidence).toBe('booted');
  }

  // One VM at a time. (A first parallel run lost OVMF's DHCP: OFFERs went out but OVMF never sent a
  // REQUEST; that was before DHCP replies went to 255.255.255.255 (d360400) and was not retried since.)
  it('BIOS lb1: iPXE option ROM → HTTP script → kernel + initramfs → lb with its own keepalived.conf', async () => {
    const vm = await runQemu('pxe-bios-lb1', biosPxeArgs({ tap: 'tap0', mac: LB1.mac }), { prefix: ['ip', 'netns', 'exec', ns], timeoutMs: 240_000, until: DONE });
    await expectRole(vm, LB1, 'lb');
    expect(markers(vm.log).some((l) => l.startsWith('rolecast: booted file /etc/keepalived/keepalived.conf')), vm.logPath).toBe(true);
  }, 270_000);

  it('UEFI w101: OVMF PXE → ipxe.efi over TFTP → iPXE → HTTP → web', async () => {
    const vm = await runQemu('pxe-uefi-w101', uefiPxeArgs({ tap: 'tap1', mac: W101.mac }, join(dir, 'ovmf-w101')), { prefix: ['ip', 'netns', 'exec', ns], timeoutMs: 240_000, until: DONE });
    await expectRole(vm, W101, 'web');
    expect(vm.log, vm.logPath).toMatch(/using SNP on SNP-/);
    expect((await timeline(W101.mac)).map((e) => e.stage), vm.logPath).toContain('tftp-loader');
  }, 270_000);

  it('BIOS w102 with boot: pxelinux: pxelinux.0 → pxelinux.cfg/01-<mac> over TFTP → web', async () => {
    const vm = await runQemu('pxe-pxelinux-w102', biosPxeArgs({ tap: 'tap0', mac: W102.mac }), { prefix: ['ip', 'netns', 'exec', ns], timeoutMs: 240_000, until: DONE });
    await expectRole(vm, W102, 'web', 'pxelinux');
    expect(vm.log, vm.logPath).toMatch(/PXELINUX/);
  }, 270_000);

  it('w104 (boot_once: wipe, confirm_wipe: true): the initramfs wipes its disk and reports it', async () => {
    const disk = join(dir, 'w104-disk.img');
    writeFileSync(disk, Buffer.alloc(4 * 1024 * 1024, 0x5a));
    const vm = await runQemu('pxe-wipe-w104', [...biosPxeArgs({ tap: 'tap0', mac: W104.mac }), '-drive', `file=${disk},format=raw,if=virtio`],
      { prefix: ['ip', 'netns', 'exec', ns], timeoutMs: 240_000, until: /rolecast: stage booted wipe complete|rolecast: FAILED/ });
    const lines = markers(vm.log);
    const evidence = `serial log: ${vm.logPath}`;
    expect(lines, evidence).toContain(`rolecast: stage cmdline url=${BASE} mac=${W104.mac} host=w104 role=wipe action=wipe`);
    expect(lines, evidence).toContain('rolecast: stage booted wipe complete: vda:overwrite passes=1+zero');
    expect(readFileSync(disk).every((b) => b === 0), evidence).toBe(true);
    const events = await timeline(W104.mac);
    expect(events.at(-1), evidence).toMatchObject({ stage: 'booted', detail: 'wipe complete: vda:overwrite passes=1+zero' });
    expect(events.some((e) => e.stage === 'initramfs' && e.detail === 'wipe vda 4 MiB'), evidence).toBe(true);
    // Boot-once: served once, then the machine is back on its own role.
    await waitFor(async () => {
      const r = await lab.exec(ns, 'curl', ['-sf', `${BASE}/api/machines/w104`]);
      const m = r.code === 0 ? JSON.parse(r.stdout) as { role: string; bootOnce: string | null } : undefined;
      return m?.role === 'web' && m.bootOnce === null;
    }, 15_000);
  }, 270_000);

  it('reassigning w101 while rolecast runs: the next boot comes up as the new role', async () => {
    sh('node', ['--import', 'tsx', 'src/cli.ts', 'assign', 'w101', 'test', '--profiles', join(dir, 'profiles')]);
    // No restart: the watcher swaps the inventory, which the API shows.
    await waitFor(async () => {
      const r = await lab.exec(ns, 'curl', ['-sf', `${BASE}/api/machines/w101`]);
      return r.code === 0 && (JSON.parse(r.stdout) as { role: string }).role === 'test';
    }, 20_000);
    const vm = await runQemu('pxe-bios-w101-reassigned', biosPxeArgs({ tap: 'tap1', mac: W101.mac }), { prefix: ['ip', 'netns', 'exec', ns], timeoutMs: 300_000, until: DONE });
    await expectRole(vm, W101, 'test');
  }, 330_000);
});
