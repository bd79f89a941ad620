/**
 * Blank servers, hands off, end to end: `rolecast serve` in a lab namespace with `unknown: { policy:
 * discover }`, Debian's lldpd announcing a "switch" (system lab-switch, port = the tap, VLAN 100 on one
 * port) on the taps the VMs plug into, and QEMU VMs (TCG, BIOS + the e1000 iPXE ROM) whose MACs are in
 * no inventory:
 * - box1 (two NICs, two virtio disks with serials, SMBIOS serial/UUID) boots from NIC1, commissions and
 *   shows up in `rolecast discovered --json` with exactly those facts and its LLDP neighbours;
 * - box1 boots again from NIC2: still one inbox entry; `rolecast adopt` while it polls writes one line;
 *   the box reboots by itself (QEMU resets, no BMC) and comes up as its role with rolecast's files
 *   (hashes equal `rolecast render`) — rolecast never restarted;
 * - box2 matches a `discovery.rules` entry with `auto: true`: adopted without a person, into its role;
 * - box3, after the site switches to `policy: boot` target rescue (a live profile edit), boots rescue
 *   through DHCP (PXE and the initramfs's own request), TFTP-less iPXE/HTTP and the rescue rootfs, and
 *   reaches `booted`.
 * Evidence: serial logs and the server log under test-artifacts/ (paths in every failure message).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describeSystem, Lab, waitFor } from '../helpers/netns.js';
import { startServe } from '../helpers/serve.js';
import { ARTIFACTS, markers, runQemu, type VmResult } from '../helpers/qemu.js';
import { buildInitramfs } from '../../src/images/initramfs.js';
import { buildTestImage } from '../../src/images/testimage.js';

const ROOT = resolve(import.meta.dirname, '../..');
const SERVER = '10.0.0.1';
const BASE = `http://${SERVER}:8080`;
const READ = 'e2e-disc-read';
const ADMIN = 'e2e-disc-admin';
const BOX1 = { serial: 'RC-DISC-0001', uuid: '5a0c3f1e-7d2b-4c1a-9e8f-0123456789ab', macs: ['52:54:00:d1:00:01', '52:54:00:d1:00:02'] };
const BOX2 = { serial: 'AUTO-0002', uuid: '5a0c3f1e-7d2b-4c1a-9e8f-00000000b0c2', mac: '52:54:00:d2:00:01' };
const BOX3 = '52:54:00:d3:00:01';
const DONE = /rolecast: test image done|rolecast: FAILED|Kernel panic/;

interface Entry {
  mac: string; macs: string[]; state: string; host?: string; via?: string;
  facts: { system: Record<string, string>; cpu: Record<string, unknown>; memoryMiB?: number; disks: Array<Record<string, unknown>>; nics: Array<Record<string, unknown> & { lldp?: Record<string, unknown> }> };
}

describeSystem('discovery end to end: policy discover, commissioning, inbox, adopt, auto rule, policy boot rescue (QEMU + lldpd)', ['qemu-system-x86_64', 'ip', 'curl', 'lldpd', 'gcc'], () => {
  const lab = new Lab('disc');
  const dir = mkdtempSync(join(tmpdir(), 'rolecast-e2e-disc-'));
  const cfgFile = join(dir, 'rolecast.yaml');
  const profiles = join(dir, 'profiles');
  const serverLogPath = join(ARTIFACTS, `discovery-${process.pid}.rolecast.log`);
  let ns = '';
  let serverLog = '';
  const evidence = (vm?: VmResult) => `${vm ? `serial: ${vm.logPath}; ` : ''}rolecast log: ${serverLogPath}`;

  /** The rolecast CLI inside the lab namespace, as an operator on the server runs it. */
  async function rolecast(args: string[]): Promise<string> {
    const r = await lab.exec(ns, 'node', ['--import', 'tsx', join(ROOT, 'src/cli.ts'), ...args, '--config', cfgFile], { timeoutMs: 60_000 });
    expect(r.code, `rolecast ${args.join(' ')}: ${r.stderr}; ${evidence()}`).toBe(0);
    return r.stdout;
  }
  const inbox = async () => JSON.parse(await rolecast(['discovered', '--json'])) as Entry[];

  async function timeline(mac: string, since: string): Promise<Array<{ stage: string; detail?: string; at: string }>> {
    const r = await lab.exec(ns, 'curl', ['-sf', '-H', `Authorization: Bearer ${READ}`, `${BASE}/api/machines/${mac}/events`]);
    const body = JSON.parse(r.stdout) as Array<{ stage: string; detail?: string; at: string }> | { events: Array<{ stage: string; detail?: string; at: string }> };
    return (Array.isArray(body) ? body : body.events).filter((e) => e.at >= since);
  }

  /** e1000 NICs (QEMU's iPXE ROM), the first listed boots. */
  const nics = (list: Array<{ tap: string; mac: string }>) => list.flatMap((n, i) => [
    '-netdev', `tap,id=n${i},ifname=${n.tap},script=no,downscript=no`,
    '-device', `e1000,netdev=n${i},mac=${n.mac}${i === 0 ? ',bootindex=1' : ''}`,
  ]);
  const disk = (name: string, mib: number, serial: string, i: number) => {
    const p = join(dir, `${name}.img`);
    if (!existsSync(p)) writeFileSync(p, Buffer.alloc(0));
    spawnSync('truncate', ['-s', `${mib}M`, p]);
    return ['-drive', `file=${p},format=raw,if=none,id=d${i}`, '-device', `virtio-blk-pci,drive=d${i},serial=${serial}`];
  };
  const smbios = (serial: string, uuid: string) => ['-smbios', `type=1,manufacturer=RolecastLab,product=Blank-1U,serial=${serial},uuid=${uuid}`];
  // The guest reboots itself after adoption: a reset must restart it, not end QEMU (baseArgs has -no-reboot).
  const REBOOTS = ['-action', 'reboot=reset'];
  const box1Args = (bootFrom: 0 | 1) => [
    ...smbios(BOX1.serial, BOX1.uuid), ...REBOOTS,
    ...nics(bootFrom === 0 ? [{ tap: 'tap0', mac: BOX1.macs[0]! }, { tap: 'tap1', mac: BOX1.macs[1]! }] : [{ tap: 'tap1', mac: BOX1.macs[1]! }, { tap: 'tap0', mac: BOX1.macs[0]! }]),
    ...disk('box1-a', 64, 'DISK-A-0001', 0), ...disk('box1-b', 128, 'DISK-B-0001', 1), '-boot', 'n',
  ];

  function run(name: string, args: string[], until: RegExp, timeoutMs = 240_000): { vm: Promise<VmResult>; log: string } {
    return { vm: runQemu(name, args, { prefix: ['ip', 'netns', 'exec', ns], timeoutMs, until }), log: join(ARTIFACTS, `${name}-${process.pid}.serial.log`) };
  }
  const consoleHas = (log: string, re: RegExp) => existsSync(log) && markers(readFileSync(log, 'utf8')).some((l) => re.test(l));

  function rendered(host: string): Map<string, string> {
    const r = spawnSync('node', ['--import', 'tsx', 'src/cli.ts', 'render', host, '--json', '--config', cfgFile], { encoding: 'utf8', cwd: ROOT });
    const out = JSON.parse(r.stdout) as { files: { path: string; sha256: string }[] };
    return new Map(out.files.map((f) => [f.path, f.sha256]));
  }

  /** Up as `role` with rolecast's own files, byte for byte. */
  function expectRole(vm: VmResult, host: string, role: string, ip: string): void {
    const lines = markers(vm.log);
    const want = (s: string) => expect(lines, `${s}\n${evidence(vm)}`).toContain(s);
    want(`rolecast: booted role=${role} host=${host} hostname=${host}`);
    want(`rolecast: booted addr ${ip}/24`);
    want('rolecast: phone-home booted ok');
    const files = rendered(host);
    for (const path of ['/etc/hostname', '/etc/network/interfaces']) want(`rolecast: booted file ${path} sha256=${files.get(path)}`);
  }

  beforeAll(async () => {
    const build = join(dir, 'images', 'build');
    await buildInitramfs({ out: build });
    await buildTestImage(build);
    cpSync(join(ROOT, 'profiles'), profiles, { recursive: true });
    const site = join(profiles, 'rolecast.yaml');
    const text = readFileSync(site, 'utf8').replace(/ {2}unknown:\n {4}policy: boot[^\n]*\n {4}target: rescue\n/, '  unknown: { policy: discover }\n');
    if (!text.includes('policy: discover')) throw new Error('profiles/rolecast.yaml: unknown-machine block not found');
    writeFileSync(site, `${text}
discovery:
  rules:
    - name: auto-rack
      match: { serial_prefix: AUTO-, nics: 1, lldp_system: lab-switch, lldp_port: "tap*" }
      host: "auto{n}"
      role: test
      addresses: { start: 10.0.0.170, end: 10.0.0.179 }
      auto: true
`);
    // Listen for LLDP 8 s (the lab's switch sends every second), poll for adoption every 2 s.
    const role = join(profiles, 'roles', 'discover.yaml');
    writeFileSync(role, readFileSync(role, 'utf8').replace('rolecast.action=discover', 'rolecast.action=discover rolecast.lldp_wait=8 rolecast.poll=2'));
    mkdirSync(join(dir, 'data'));
    writeFileSync(cfgFile, [
      `profilesDir: ${profiles}`, `dataDir: ${join(dir, 'data')}`, `imagesDir: ${join(dir, 'images')}`,
      `address: ${SERVER}`, 'logLevel: debug', `http:\n  tokens:\n    read: [${READ}]\n    admin: [${ADMIN}]`, '',
    ].join('\n'));

    ns = lab.ns('disc');
    lab.bridge(ns, 'br0');
    lab.addr(ns, 'br0', `${SERVER}/24`);
    for (const tap of ['tap0', 'tap1', 'tap2', 'tap3']) lab.tap(ns, 'br0', tap);
    // The "switch": lldpd on the VMs' ports, port ID = interface name, 802.1 Port VLAN ID 100 on tap0.
    chmodSync(dir, 0o755); // lldpd drops privileges; its socket lives here
    writeFileSync(join(dir, 'lldpd.conf'), ['configure system hostname lab-switch', 'configure lldp tx-interval 1', 'configure lldp portidsubtype ifname',
      'configure ports tap0 lldp custom-tlv oui 00,80,c2 subtype 1 oui-info 00,64', ''].join('\n'));
    lab.spawn(ns, 'lldpd', ['-d', '-u', join(dir, 'lldpd.sock'), '-I', 'tap0,tap1,tap2,tap3', '-O', join(dir, 'lldpd.conf')]);

    mkdirSync(ARTIFACTS, { recursive: true });
    await startServe(lab, ns, cfgFile, serverLogPath, (t) => { serverLog += t; });
  }, 180_000);

  afterAll(async () => {
    await lab.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  it('box1 (unknown MACs) commissions under policy discover: the inbox holds its exact facts and LLDP neighbours', async () => {
    const { vm } = run('disc-box1-nic1', box1Args(0), /rolecast: stage discovered|rolecast: FAILED|Kernel panic/);
    const v = await vm;
    const lines = markers(v.log);
    expect(lines, evidence(v)).toContain(`rolecast: stage cmdline url=${BASE} mac=${BOX1.macs[0]} host= role=discover action=discover`);
    expect(lines, evidence(v)).toContain('rolecast: stage discovered state=waiting');
    const list = await inbox();
    expect(list, evidence(v)).toHaveLength(1);
    const e = list[0]!;
    expect(e).toMatchObject({ mac: BOX1.macs[0], macs: BOX1.macs, state: 'waiting', via: BOX1.macs[0] });
    expect(e.facts.system).toEqual({ vendor: 'RolecastLab', product: 'Blank-1U', serial: BOX1.serial, uuid: BOX1.uuid });
    expect(e.facts.cpu).toMatchObject({ sockets: 1, cores: 1, threads: 1, model: expect.stringContaining('QEMU') });
    expect(e.facts.memoryMiB).toBe(512);
    expect(e.facts.disks).toEqual([
      { name: 'vda', bytes: 64 * 2 ** 20, serial: 'DISK-A-0001', rotational: true },
      { name: 'vdb', bytes: 128 * 2 ** 20, serial: 'DISK-B-0001', rotational: true },
    ]);
    expect(e.facts.nics.map((n) => [n.name, n.mac, n.driver, n.speedMbps, n.link])).toEqual([['eth0', BOX1.macs[0], 'e1000', 1000, true], ['eth1', BOX1.macs[1], 'e1000', 1000, true]]);
    const chassis = e.facts.nics[0]!.lldp?.chassis;
    expect(chassis, evidence(v)).toMatch(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
    expect(e.facts.nics.map((n) => n.lldp)).toEqual([{ chassis, port: 'tap0', system: 'lab-switch', vlan: 100 }, { chassis, port: 'tap1', system: 'lab-switch' }]);
    expect(await rolecast(['discovered'])).toMatch(new RegExp(`^${BOX1.macs[0]}\\s.*${BOX1.serial}\\s+${BOX1.uuid}\\s.*eth0→lab-switch/tap0 eth1→lab-switch/tap1\\s+waiting$`, 'm'));
  }, 270_000);

  it('box1 from its second NIC stays one entry; rolecast adopt while it polls; it reboots by itself into its role', async () => {
    const since = new Date().toISOString();
    const { vm, log } = run('disc-box1-nic2', box1Args(1), DONE, 360_000);
    await waitFor(() => consoleHas(log, /^rolecast: stage discovered/) || consoleHas(log, /FAILED/), 240_000, 500);
    const list = await inbox();
    expect(list.map((x) => [x.mac, x.via, x.state]), evidence()).toEqual([[BOX1.macs[0], BOX1.macs[1], 'waiting']]);
    const before = readFileSync(join(profiles, 'machines.yaml'), 'utf8');
    const out = await rolecast(['adopt', BOX1.serial, '--host', 'disc1', '--role', 'test', '--ip', '10.0.0.150']);
    const line = `  - { host: disc1, mac: [${BOX1.macs[1]}, ${BOX1.macs[0]}], role: test, ip: 10.0.0.150, uuid: ${BOX1.uuid} }   # discovered: serial ${BOX1.serial}`;
    expect(out).toContain(line);
    expect(readFileSync(join(profiles, 'machines.yaml'), 'utf8')).toBe(`${before}${line}\n`);
    const v = await vm;
    const lines = markers(v.log);
    expect(lines, evidence(v)).toContain('rolecast: stage adopted host=disc1');
    expect(lines, evidence(v)).toContain(`rolecast: stage cmdline url=${BASE} mac=${BOX1.macs[1]} host=disc1 role=test action=boot`);
    expectRole(v, 'disc1', 'test', '10.0.0.150');
    const stages = (await timeline(BOX1.macs[1]!, since)).map((x) => x.stage);
    expect(stages, evidence(v)).toEqual(expect.arrayContaining(['discovered', 'adopted', 'http-rootfs', 'booted']));
    expect(stages.at(-1), evidence(v)).toBe('booted');
    expect((await inbox()).map((x) => [x.mac, x.state, x.host])).toEqual([[BOX1.macs[0], 'adopted', 'disc1']]);
    expect(serverLog.match(/"msg":"rolecast serving"/g), 'rolecast was not restarted').toHaveLength(1);
  }, 420_000);

  it('box2 matches a rule with auto: true and is adopted without a person, into the rule\'s role and range', async () => {
    const { vm } = run('disc-box2-auto', [...smbios(BOX2.serial, BOX2.uuid), ...REBOOTS, ...nics([{ tap: 'tap2', mac: BOX2.mac }]), '-boot', 'n'], DONE, 360_000);
    const v = await vm;
    expect(markers(v.log), evidence(v)).toContain('rolecast: stage discovered state=adopted');
    expectRole(v, 'auto1', 'test', '10.0.0.170');
    const m = readFileSync(join(profiles, 'machines.yaml'), 'utf8');
    expect(m).toContain(`  - { host: auto1, mac: [${BOX2.mac}], role: test, ip: 10.0.0.170, uuid: ${BOX2.uuid} }   # discovered: serial ${BOX2.serial}`);
    expect((await inbox()).find((x) => x.mac === BOX2.mac)).toMatchObject({ state: 'adopted', host: 'auto1' });
  }, 420_000);

  it('under policy: boot rescue (a live edit), an unknown VM boots the rescue image to booted', async () => {
    const site = join(profiles, 'rolecast.yaml');
    writeFileSync(site, readFileSync(site, 'utf8').replace('  unknown: { policy: discover }\n', '  unknown: { policy: boot, target: rescue }\n'));
    await waitFor(async () => {
      const r = await lab.exec(ns, 'curl', ['-sf', `${BASE}/boot/${BOX3}.ipxe`]);
      return r.stdout.includes('rolecast.role=rescue');
    }, 30_000, 500);
    const since = new Date().toISOString();
    const { vm } = run('disc-box3-rescue', [...nics([{ tap: 'tap3', mac: BOX3 }]), '-boot', 'n'], /rolecast: rescue shell on the console|rolecast: FAILED|Kernel panic/);
    const v = await vm;
    const lines = markers(v.log);
    expect(lines, evidence(v)).toContain(`rolecast: stage cmdline url=${BASE} mac=${BOX3} host= role=rescue action=rescue`);
    expect(lines, evidence(v)).toContain('rolecast: phone-home booted ok');
    const stages = (await timeline(BOX3, since)).map((x) => x.stage);
    expect(stages, evidence(v)).toEqual(expect.arrayContaining(['dhcp-ack', 'http-script', 'http-kernel', 'http-initrd', 'http-rootfs', 'booted']));
    expect(stages.at(-1), evidence(v)).toBe('booted');
  }, 270_000);
});
