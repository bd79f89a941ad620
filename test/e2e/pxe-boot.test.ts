/**
 * The whole chain, as a blank machine sees it: `rolecast serve` (real DHCP + TFTP + HTTP) runs inside
 * one lab namespace on a bridge, for the whole file; QEMU VMs (TCG) with the MACs of
 * profiles/machines.yaml network-boot from it, one at a time, each chain once:
 * - lb1, BIOS: SeaBIOS + the e1000 option ROM (iPXE) → DHCP → HTTP /boot/<mac>.ipxe → kernel + initramfs
 *   → lb, with its own keepalived.conf;
 * - w101, UEFI: OVMF's own PXE (virtio-net, no ROM) → snponly.efi over TFTP → iPXE → HTTP → web;
 * - w102, BIOS with `boot: pxelinux`: pxelinux.0 → pxelinux.cfg/01-<mac> → kernel + initramfs, all over TFTP;
 * - w103, UEFI with `boot: grub`: OVMF PXE → Debian's grubnetx64.efi over TFTP → $prefix/grub.cfg (rendered
 *   per machine, found by the client's address) → kernel + initramfs over TFTP (GRUB 2.06 reaches HTTP on
 *   port 80 only);
 * - w104, `boot_once: wipe`: the initramfs wipes its disk (checked byte by byte) and reports it, and
 *   boot_once is cleared, so the machine is back on its role;
 * - w106, UEFI, `boot_once: memtest`: iPXE chains memtest86+'s EFI build (the memtest role's kernel for
 *   uefi-x64) with the role's console=ttyS0, which makes memtest draw on the serial console;
 * - w101 again, reassigned (`rolecast assign w101 test`) while rolecast runs: the next boot (BIOS, the
 *   faster path) comes up as the new role, without a restart.
 * Each boot: the initramfs DHCPs, fetches /rootfs/<mac>.tar (role base + the machine's generated files)
 * and switch_roots. The role bases lb.tar and web.tar are the busybox test image (symlinks in a temp
 * images dir), so a boot takes seconds after the kernel starts; the files that matter are the ones
 * rolecast generates, whose sha256 on the booted machine must equal `rolecast render --json`. The
 * serial console shows the role, address and phone-home; the machine's timeline (GET
 * /api/machines/<mac>/events, this boot's events only) holds every stage of its chain and ends in `booted`.
 * Evidence stays under test-artifacts/ and its paths are in every failure message: serial logs, the
 * server log (written as it grows) and a tcpdump capture of the lab bridge, which the last test reads back.
 *
 * Part of every run (CI included): about 3.5 min of TCG on a 2-core machine (7 boots: ~26 s per BIOS
 * boot, ~37 s UEFI, plus image builds and server start).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describeSystem, Lab, waitFor } from '../helpers/netns.js';
import { startServe } from '../helpers/serve.js';
import { ARTIFACTS, biosPxeArgs, markers, runQemu, uefiPxeArgs, type VmResult } from '../helpers/qemu.js';
import { buildInitramfs } from '../../src/images/initramfs.js';
import { buildTestImage } from '../../src/images/testimage.js';
import { buildMemtest } from '../../src/images/maintenance.js';

const ROOT = resolve(import.meta.dirname, '../..');
const SERVER = '10.0.0.1';
const BASE = `http://${SERVER}:8080`;
/** The operator's read-only API token (the inventory and timelines need one). */
const READ_TOKEN = 'e2e-read-token';
interface Box { host: string; mac: string; ip: string }
const LB1: Box = { host: 'lb1', mac: '52:54:00:00:01:01', ip: '10.0.0.11' };
const W101: Box = { host: 'w101', mac: '52:54:00:00:02:01', ip: '10.0.0.101' };
const W102: Box = { host: 'w102', mac: '52:54:00:00:02:02', ip: '10.0.0.102' };
const W103: Box = { host: 'w103', mac: '52:54:00:00:02:03', ip: '10.0.0.103' };
const W104: Box = { host: 'w104', mac: '52:54:00:00:02:04', ip: '10.0.0.104' };
const W106: Box = { host: 'w106', mac: '52:54:00:00:02:06', ip: '10.0.0.106' };
/** memtest86+ drew its screen on the serial console: proof that console=ttyS0 reached it. */
const MEMTEST = /Memtest86\+ v\d[\s\S]*Status: Testing/;
const DONE = /rolecast: test image done|rolecast: FAILED|Kernel panic|end Kernel panic/;
/** Stop early on failure only: the wipe reports, then powers off, which ends QEMU (-no-reboot). */
const FAILED = /rolecast: FAILED|Kernel panic/;
/** The files the test image hashes on the console; hostname and network config every machine gets. */
const HASHED = ['/etc/hostname', '/etc/network/interfaces', '/etc/keepalived/keepalived.conf'];
const ALWAYS = ['/etc/hostname', '/etc/network/interfaces'];

/** iPXE fetches script, kernel and initrd over HTTP; PXELINUX gets its config and both over TFTP. */
const CHAIN = {
  ipxe: ['dhcp-discover', 'dhcp-ack', 'http-script', 'http-kernel', 'http-initrd', 'initramfs', 'http-rootfs'],
  pxelinux: ['dhcp-discover', 'dhcp-ack', 'tftp-loader', 'tftp-config', 'tftp-file', 'initramfs', 'http-rootfs'],
  // GRUB 2.06 cannot reach HTTP on a port other than 80, so with the lab's :8080 it takes the images over TFTP.
  grub: ['dhcp-discover', 'dhcp-ack', 'tftp-loader', 'tftp-config', 'tftp-file', 'initramfs', 'http-rootfs'],
};

function sh(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', cwd: ROOT });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/**
 * Console text without terminal control sequences (ESC [ ... letter) and carriage returns: PXELINUX's
 * drawing can put a CR and a cursor move right after the first letter of its name (seen: P, CR, ESC [25;02H, XELINUX).
 */
const CSI = new RegExp(`${String.fromCharCode(27)}\\[[0-9;?]*[A-Za-z]`, 'g');
const plain = (log: string) => log.replace(CSI, '').replace(/\r/g, '');

interface TimelineEvent { stage: string; detail?: string; at: string }

describeSystem('PXE boot from rolecast: BIOS (iPXE ROM), UEFI (OVMF → snponly.efi), PXELINUX, boot-once wipe, reassignment', ['qemu-system-x86_64', 'ip', 'curl', 'tcpdump'], () => {
  const lab = new Lab('pxe');
  const dir = mkdtempSync(join(tmpdir(), 'rolecast-e2e-pxe-'));
  const cfgFile = join(dir, 'rolecast.yaml');
  const serverLogPath = join(ARTIFACTS, `pxe-boot-${process.pid}.rolecast.log`);
  const pcapPath = join(ARTIFACTS, `pxe-boot-${process.pid}.pcap`);
  let ns = '';
  let server: ChildProcess | undefined;
  let serverLog = '';
  const serverGone = () => server !== undefined && (server.exitCode !== null || server.signalCode !== null);
  const evidence = (vm: VmResult) => `serial: ${vm.logPath}; rolecast log: ${serverLogPath}; capture: ${pcapPath}` +
    (serverGone() ? `; rolecast EXITED (${server?.exitCode ?? server?.signalCode})` : '');

  beforeAll(async () => {
    const build = join(dir, 'images', 'build');
    await buildInitramfs({ out: build });
    await buildTestImage(build);
    await buildMemtest(build);
    for (const role of ['lb', 'web']) symlinkSync('test.tar', join(build, 'rootfs', `${role}.tar`));
    cpSync(join(ROOT, 'profiles'), join(dir, 'profiles'), { recursive: true });
    // w102 boots through PXELINUX instead of iPXE (a per-machine boot method); w104 is sent to the disk
    // wipe once, and confirms it.
    const machines = join(dir, 'profiles', 'machines.yaml');
    let text = readFileSync(machines, 'utf8');
    for (const [host, add] of [['w102', 'boot: pxelinux'], ['w103', 'boot: grub'], ['w104', 'boot_once: wipe, confirm_wipe: true'], ['w106', 'boot_once: memtest']] as const) {
      const line = new RegExp(`^(\\s*- \\{ host: ${host},.*)( \\})$`, 'm');
      if (!line.test(text)) throw new Error(`profiles/machines.yaml: no ${host} line to add "${add}" to`);
      text = text.replace(line, `$1, ${add}$2`);
    }
    writeFileSync(machines, text);
    mkdirSync(join(dir, 'data'));
    writeFileSync(cfgFile, [
      `profilesDir: ${join(dir, 'profiles')}`, `dataDir: ${join(dir, 'data')}`, `imagesDir: ${join(dir, 'images')}`,
      `address: ${SERVER}`, 'logLevel: debug', `http:\n  tokens:\n    read: [${READ_TOKEN}]`, '',
    ].join('\n'));

    ns = lab.ns('pxe');
    lab.bridge(ns, 'br0');
    lab.addr(ns, 'br0', `${SERVER}/24`);
    for (const tap of ['tap0', 'tap1']) lab.tap(ns, 'br0', tap);
    mkdirSync(ARTIFACTS, { recursive: true });
    // Every packet on the lab bridge, kept with the serial and server logs as evidence.
    const tcpdump = lab.spawn(ns, 'tcpdump', ['-i', 'br0', '-n', '-s', '512', '-U', '-w', pcapPath]);
    let tcpdumpErr = '';
    tcpdump.stderr?.on('data', (d: Buffer) => { tcpdumpErr += d.toString(); });
    await waitFor(() => tcpdumpErr.includes('listening on') || tcpdump.exitCode !== null, 10_000);
    if (!tcpdumpErr.includes('listening on')) throw new Error(`tcpdump did not start: ${tcpdumpErr}`);
    // The server log is written as it grows, so a run that dies still leaves it behind.
    server = await startServe(lab, ns, cfgFile, serverLogPath, (t) => { serverLog += t; });
  }, 120_000);

  afterAll(async () => {
    await lab.cleanup();
    console.log(`evidence kept: ${serverLogPath}, ${pcapPath}, serial logs in ${ARTIFACTS}`);
    rmSync(dir, { recursive: true, force: true });
  });

  /** This boot's events (recorded at or after `since`, an ISO time), from the API an operator uses. */
  async function timeline(mac: string, since: string): Promise<TimelineEvent[]> {
    const r = await lab.exec(ns, 'curl', ['-sf', '-H', `Authorization: Bearer ${READ_TOKEN}`, `${BASE}/api/machines/${mac}/events`]);
    expect(r.code, r.stderr).toBe(0);
    const body = JSON.parse(r.stdout) as TimelineEvent[] | { events: TimelineEvent[] };
    return (Array.isArray(body) ? body : body.events).filter((e) => e.at >= since);
  }

  async function machine(host: string): Promise<{ role: string; bootOnce: string | null } | undefined> {
    const r = await lab.exec(ns, 'curl', ['-sf', '-H', `Authorization: Bearer ${READ_TOKEN}`, `${BASE}/api/machines/${host}`]);
    return r.code === 0 ? JSON.parse(r.stdout) as { role: string; bootOnce: string | null } : undefined;
  }

  /** The server log's JSON lines (pino), for checks on what rolecast logged. */
  function logged(): Record<string, unknown>[] {
    return serverLog.split('\n').flatMap((l) => {
      try { return [JSON.parse(l) as Record<string, unknown>]; } catch { return []; }
    });
  }

  function rendered(host: string): Map<string, string> {
    const out = JSON.parse(sh('node', ['--import', 'tsx', 'src/cli.ts', 'render', host, '--json', '--config', cfgFile])) as { files: { path: string; sha256: string }[] };
    return new Map(out.files.map((f) => [f.path, f.sha256]));
  }

  /** Boot one VM inside the lab until `until` shows on its console; returns it and when it started. */
  async function boot(name: string, args: string[], until = DONE, timeoutMs = 240_000): Promise<{ vm: VmResult; since: string }> {
    expect(serverGone(), `rolecast exited before ${name}; log: ${serverLogPath}`).toBe(false);
    const since = new Date().toISOString();
    const vm = await runQemu(name, args, { prefix: ['ip', 'netns', 'exec', ns], timeoutMs, until });
    return { vm, since };
  }

  /** Came up as `role`, with rolecast's files byte for byte, and this boot's timeline went through `chain` to `booted`. */
  async function expectRole(vm: VmResult, since: string, m: Box, role: string, chain: keyof typeof CHAIN): Promise<TimelineEvent[]> {
    const lines = markers(vm.log);
    const want = (s: string) => expect(lines, `${s}\n${evidence(vm)}`).toContain(s);
    want(`rolecast: stage cmdline url=${BASE} mac=${m.mac} host=${m.host} role=${role} action=boot`);
    want(`rolecast: booted role=${role} host=${m.host} hostname=${m.host}`);
    want(`rolecast: booted addr ${m.ip}/24`);
    want('rolecast: phone-home booted ok');
    const files = rendered(m.host);
    for (const path of ALWAYS) expect(files.has(path), `rolecast render ${m.host} has no ${path}`).toBe(true);
    for (const path of HASHED) {
      const sha = files.get(path);
      if (sha) want(`rolecast: booted file ${path} sha256=${sha}`);
      else expect(lines.some((l) => l.includes(`file ${path} `)), `${path} not rendered for ${m.host} but on its console; ${evidence(vm)}`).toBe(false);
    }
    const events = await timeline(m.mac, since);
    const stages = events.map((e) => e.stage);
    for (const s of CHAIN[chain]) expect(stages, `${s} in timeline ${stages.join(',')}; ${evidence(vm)}`).toContain(s);
    expect(stages.at(-1), `timeline ${stages.join(',')}; ${evidence(vm)}`).toBe('booted');
    return events;
  }

  // One VM at a time. (A first parallel run lost OVMF's DHCP: OFFERs went out but OVMF never sent a
  // REQUEST; that was before DHCP replies went to 255.255.255.255 (d360400) and was not retried since.)
  it('BIOS lb1: iPXE option ROM → HTTP script → kernel + initramfs → lb with its own keepalived.conf', async () => {
    const { vm, since } = await boot('pxe-bios-lb1', biosPxeArgs({ tap: 'tap0', mac: LB1.mac }));
    await expectRole(vm, since, LB1, 'lb', 'ipxe');
    expect(rendered(LB1.host).has('/etc/keepalived/keepalived.conf'), 'rolecast render lb1 has no keepalived.conf').toBe(true);
  }, 270_000);

  it('UEFI w101: OVMF PXE → snponly.efi over TFTP → iPXE → HTTP → web', async () => {
    const { vm, since } = await boot('pxe-uefi-w101', uefiPxeArgs({ tap: 'tap1', mac: W101.mac }, join(dir, 'ovmf-w101')));
    const events = await expectRole(vm, since, W101, 'web', 'ipxe');
    expect(vm.log, evidence(vm)).toMatch(/using SNP on SNP-/);
    expect(events, evidence(vm)).toContainEqual(expect.objectContaining({ stage: 'tftp-loader', detail: 'snponly.efi' }));
    expect(logged(), `tftp-loader snponly.efi in ${serverLogPath}`).toContainEqual(expect.objectContaining({ event: 'tftp-loader', mac: W101.mac, detail: 'snponly.efi' }));
  }, 270_000);

  it('BIOS w102 with boot: pxelinux: pxelinux.0 → pxelinux.cfg/01-<mac> over TFTP → web', async () => {
    const { vm, since } = await boot('pxe-pxelinux-w102', biosPxeArgs({ tap: 'tap0', mac: W102.mac }));
    const events = await expectRole(vm, since, W102, 'web', 'pxelinux');
    // PXELINUX draws on the console with cursor moves that can land inside its own name: strip them.
    expect(plain(vm.log), evidence(vm)).toMatch(/PXELINUX \d+\.\d+/);
    const tftp = events.filter((e) => e.stage.startsWith('tftp-')).map((e) => `${e.stage} ${e.detail ?? ''}`);
    expect(tftp, evidence(vm)).toContainEqual(expect.stringMatching(/^tftp-loader .*pxelinux\.0$/));
    expect(tftp, evidence(vm)).toContainEqual(expect.stringMatching(/^tftp-config .*pxelinux\.cfg\/01-52-54-00-00-02-02$/));
  }, 270_000);

  it('UEFI w103 with boot: grub: grubnetx64.efi over TFTP → grub.cfg for its address → kernel + initrd → web', async () => {
    const { vm, since } = await boot('pxe-grub-w103', uefiPxeArgs({ tap: 'tap1', mac: W103.mac }, join(dir, 'ovmf-w103')));
    const events = await expectRole(vm, since, W103, 'web', 'grub');
    const tftp = events.filter((e) => e.stage.startsWith('tftp-')).map((e) => `${e.stage} ${e.detail ?? ''}`);
    expect(tftp, evidence(vm)).toContainEqual(expect.stringMatching(/^tftp-loader .*grubnetx64\.efi$/));
    expect(tftp, evidence(vm)).toContainEqual(expect.stringMatching(/^tftp-config .*grub\.cfg/));
    expect(tftp, evidence(vm)).toContainEqual(expect.stringMatching(/^tftp-file .*images\/kernel$/));
    expect(plain(vm.log), evidence(vm)).not.toMatch(/error: /);
  }, 270_000);

  it('w104 (boot_once: wipe, confirm_wipe: true): the initramfs wipes its disk and reports it; boot_once is cleared', async () => {
    const disk = join(dir, 'w104-disk.img');
    writeFileSync(disk, Buffer.alloc(4 * 1024 * 1024, 0x5a));
    const { vm, since } = await boot('pxe-wipe-w104', [...biosPxeArgs({ tap: 'tap0', mac: W104.mac }), '-drive', `file=${disk},format=raw,if=virtio`], FAILED);
    // Ran to its own poweroff, so the "booted" phone-home that follows the console marker went out.
    expect(vm.timedOut || vm.matched, `VM did not power off by itself; ${evidence(vm)}`).toBe(false);
    const lines = markers(vm.log);
    expect(lines, evidence(vm)).toContain(`rolecast: stage cmdline url=${BASE} mac=${W104.mac} host=w104 role=wipe action=wipe`);
    expect(lines, evidence(vm)).toContain('rolecast: stage booted wipe complete: vda:overwrite passes=1+zero');
    expect(readFileSync(disk).every((b) => b === 0), `disk not all zeros; ${evidence(vm)}`).toBe(true);
    const events = await timeline(W104.mac, since);
    expect(events.at(-1), evidence(vm)).toMatchObject({ stage: 'booted', detail: 'wipe complete: vda:overwrite passes=1+zero' });
    expect(events, evidence(vm)).toContainEqual(expect.objectContaining({ stage: 'initramfs', detail: 'wipe vda 4 MiB' }));
    // Boot-once: served once, then the machine is back on its own role.
    await waitFor(async () => {
      const m = await machine('w104');
      return m?.role === 'web' && m.bootOnce === null;
    }, 15_000).catch(async () => { throw new Error(`w104 not back on web after its wipe: ${JSON.stringify(await machine('w104'))}; ${evidence(vm)}`); });
  }, 270_000);

  it('UEFI w106 with boot_once: memtest: iPXE chains memtest86+\'s EFI build (the role\'s per-firmware kernel) with console=ttyS0', async () => {
    const { vm, since } = await boot('pxe-memtest-w106', uefiPxeArgs({ tap: 'tap1', mac: W106.mac }, join(dir, 'ovmf-w106')), MEMTEST);
    expect(vm.matched, `memtest86+ did not draw on the serial console; ${evidence(vm)}`).toBe(true);
    const events = await timeline(W106.mac, since);
    expect(events, evidence(vm)).toContainEqual(expect.objectContaining({ stage: 'http-image', detail: 'memtest-efi' }));
    expect(events.some((e) => e.detail === 'memtest-bios'), evidence(vm)).toBe(false);
    await waitFor(async () => (await machine('w106'))?.bootOnce === null, 15_000)
      .catch(async () => { throw new Error(`w106 still sent to memtest: ${JSON.stringify(await machine('w106'))}; ${evidence(vm)}`); });
  }, 270_000);

  it('reassigning w101 while rolecast runs: the next boot comes up as the new role', async () => {
    sh('node', ['--import', 'tsx', 'src/cli.ts', 'assign', 'w101', 'test', '--profiles', join(dir, 'profiles')]);
    // No restart: the watcher swaps the inventory, which the API shows.
    await waitFor(async () => (await machine('w101'))?.role === 'test', 20_000);
    expect(serverLog, serverLogPath).toContain('profiles reloaded');
    const { vm, since } = await boot('pxe-bios-w101-reassigned', biosPxeArgs({ tap: 'tap1', mac: W101.mac }), DONE, 300_000);
    await expectRole(vm, since, W101, 'test', 'ipxe');
  }, 330_000);

  it('the capture of the lab bridge holds each machine\'s DHCP and the TFTP and HTTP transfers', () => {
    // -c 1: one packet proves the exchange is there (the HTTP part alone is megabytes of lines).
    const has = (filter: string) => sh('tcpdump', ['-r', pcapPath, '-n', '-c', '1', filter]).trim() !== '';
    for (const m of [LB1, W101, W102, W103, W104]) expect(has(`ether src ${m.mac} and udp dst port 67`), `DHCP from ${m.host} in ${pcapPath}`).toBe(true);
    expect(has('udp dst port 69'), `TFTP requests in ${pcapPath}`).toBe(true);
    expect(has('tcp dst port 8080'), `HTTP requests in ${pcapPath}`).toBe(true);
  });
});
