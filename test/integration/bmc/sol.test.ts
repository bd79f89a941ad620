/**
 * The boot console recorder against a real BMC: Debian's OpenIPMI ipmi_sim on 127.0.0.1 with Serial
 * over LAN onto a TCP serial port, driven through Debian's ipmitool. The serial port's far end — the
 * machine printing its boot — is a socket this test writes to (the VM e2e, test/e2e/bmc-ipmi.test.ts,
 * has QEMU there). Events go through the real file event log, as in `rolecast serve`:
 * - a power-done `on` starts a recording; what the machine prints lands in <data>/console/<host>.log;
 *   a power status call works beside the held SOL session; `failed` puts the last screen, terminal
 *   control stripped, into the timeline as a `console` event, and the SOL payload is freed (~.);
 * - `booted` ends it without a console event; no end within the timeout gives one saying so;
 * - a PXE DHCPDISCOVER starts one, the initramfs's own DHCP does not; a machine with no BMC is left alone;
 *   firmware DHCP again after the kernel went out (a panic reboot) keeps that boot's last screen;
 * - SOL held by another session: not taken over, and the failed boot's console event says why it is empty.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { createSocket } from 'node:dgram';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { describeSystem, waitFor } from '../../helpers/netns.js';
import { fixtureMac, writeFixtureProfiles } from '../../helpers/profiles.js';
import { startIpmiSim } from '../../helpers/ipmisim.js';
import { loadInventory } from '../../../src/inventory/index.js';
import type { Inventory } from '../../../src/inventory/types.js';
import { FileEventLog } from '../../../src/state/file/events.js';
import { createLogger } from '../../../src/log.js';
import { PowerService } from '../../../src/bmc/service.js';
import { ConsoleLogStore } from '../../../src/bmc/consolelog.js';
import { ConsoleRecorder } from '../../../src/bmc/recorder.js';

const PASSWORD = 'sol-test-pa55';
const M1 = fixtureMac(0);
const M2 = fixtureMac(1);

async function freeUdpPort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  const { port } = s.address();
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describeSystem('boot console recorder: Serial over LAN from ipmi_sim through ipmitool', ['ipmi_sim', 'ipmitool'], () => {
  const dir = mkdtempSync(join(tmpdir(), 'rolecast-sol-'));
  const data = join(dir, 'data');
  let sim: ChildProcess | undefined;
  let serial: Server;
  let machine: Socket | undefined;
  let inv: Inventory;
  let events: FileEventLog;
  let power: PowerService;
  let recorder: ConsoleRecorder;
  let bmcPort = 0;
  const timeline = () => events.timeline(M1);
  const consoleEvents = () => timeline().filter((e) => e.stage === 'console');
  const print = (text: string) => machine?.write(text);

  beforeAll(async () => {
    serial = createServer((s) => { machine = s; s.on('error', () => undefined); });
    await new Promise<void>((r) => serial.listen(0, '127.0.0.1', r));
    const serialPort = (serial.address() as { port: number }).port;
    bmcPort = await freeUdpPort();
    mkdirSync(join(dir, 'sim'));
    sim = startIpmiSim({ dir: join(dir, 'sim'), addr: '127.0.0.1', port: bmcPort, password: PASSWORD, sol: `tcp:127.0.0.1:${serialPort}` });
    const profiles = join(dir, 'profiles');
    writeFixtureProfiles(profiles, { machines: 2 });
    writeFileSync(join(profiles, 'machines.yaml'), ['machines:',
      `  - { host: w001, mac: ${M1}, role: web, ip: 10.0.0.11, bmc: { type: ipmi, address: "127.0.0.1:${bmcPort}", user: admin, password: secret:bmc } }`,
      `  - { host: w002, mac: ${M2}, role: web, ip: 10.0.0.12 }`, ''].join('\n'));
    writeFileSync(join(profiles, 'secrets.yaml'), `bmc: ${PASSWORD}\n`);
    inv = await loadInventory(profiles);
    events = await FileEventLog.open(data, createLogger('silent'));
    power = new PowerService({ policy: { timeoutMs: 5000, attempts: 2 }, maxConcurrent: 4, events });
    recorder = new ConsoleRecorder({
      getInventory: () => inv, events, limiter: power.limiter, policy: power.policy, logs: new ConsoleLogStore(join(data, 'console'), 64 * 1024),
      config: { record: 'boot', timeoutMs: 4000, lines: 5, maxBytes: 64 * 1024, maxSessions: 4, settleMs: 300 }, logger: createLogger(process.env.SOL_DEBUG ? 'debug' : 'silent'),
    });
    recorder.start();
    // ipmi_sim is up once it answers a status read.
    await waitFor(async () => (await power.run(inv, inv.byHost.get('w001')!, 'status')).ok, 15_000, 300);
  }, 30_000);

  afterAll(async () => {
    await recorder?.close();
    await events?.close();
    if (sim?.pid) try { process.kill(sim.pid, 'SIGKILL'); } catch { /* gone */ }
    machine?.destroy();
    serial?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('power on starts a recording; a failed boot leaves its last screen, without terminal control, in the timeline', async () => {
    events.emit({ mac: M1, host: 'w001', stage: 'power-done', detail: 'on ok' });
    await waitFor(() => recorder.recording('w001') && machine !== undefined, 10_000, 50);
    // The recorder attaches right after the power call; give SOL a moment, then the "boot" prints.
    await waitFor(async () => {
      print('\x1b[0;1mprobe\x1b[0m\r\n');
      await new Promise((r) => setTimeout(r, 200));
      return readFileSync(join(data, 'console', 'w001.log'), 'latin1').includes('probe');
    }, 10_000, 0);
    print('\x1bc\x1b[?7l\x1b[2J[    0.000000] Linux version 6.1.0-57-amd64\r\n');
    for (let i = 1; i <= 8; i++) print(`rolecast: stage ${i}\r\n`);
    print('rolecast: \x1b[31mFAILED: rootfs has no /sbin/init\x1b[0m\r\nrolecast: dropping to a shell on the console (exit to reboot)\r\n~ # ');
    // Power calls keep working beside the SOL session it holds.
    expect((await power.run(inv, inv.byHost.get('w001')!, 'status')).ok).toBe(true);
    await waitFor(() => readFileSync(join(data, 'console', 'w001.log'), 'latin1').includes('~ # '), 10_000, 100);
    events.emit({ mac: M1, host: 'w001', stage: 'failed', detail: 'rootfs has no /sbin/init' });
    await waitFor(() => consoleEvents().length === 1, 10_000, 50);
    const detail = consoleEvents()[0]!.detail!;
    expect(detail).toBe([
      'boot failed (rootfs has no /sbin/init); last 5 console lines:',
      'rolecast: stage 7', 'rolecast: stage 8', 'rolecast: FAILED: rootfs has no /sbin/init',
      'rolecast: dropping to a shell on the console (exit to reboot)', '~ #',
    ].join('\n'));
    expect(recorder.recording('w001')).toBe(false);
    const raw = readFileSync(join(data, 'console', 'w001.log'), 'latin1');
    expect(raw).toContain('Linux version 6.1.0-57-amd64');
    expect(raw).toContain('\x1b[31mFAILED'); // the file keeps the bytes as sent
  }, 40_000);

  it('booted ends the recording without a console event; the previous boot\'s log is kept beside it', async () => {
    events.emit({ mac: M1, host: 'w001', stage: 'power-done', detail: 'cycle ok' });
    await waitFor(() => recorder.recording('w001'), 5000, 50);
    await waitFor(async () => {
      print('second boot\r\n');
      await new Promise((r) => setTimeout(r, 200));
      return readFileSync(join(data, 'console', 'w001.log'), 'latin1').includes('second boot');
    }, 10_000, 0);
    events.emit({ mac: M1, host: 'w001', stage: 'booted', detail: 'role=web' });
    await waitFor(() => !recorder.recording('w001'), 5000, 50);
    await new Promise((r) => setTimeout(r, 500));
    expect(consoleEvents()).toHaveLength(1);
    expect(readFileSync(join(data, 'console', 'w001.prev.log'), 'latin1')).toContain('FAILED');
  }, 30_000);

  it('a boot with no end within the timeout: the console event says so, with the last screen', async () => {
    events.emit({ mac: M1, host: 'w001', stage: 'power-done', detail: 'reset ok' });
    await waitFor(() => recorder.recording('w001'), 5000, 50);
    await waitFor(async () => {
      print('stuck in firmware\r\n');
      await new Promise((r) => setTimeout(r, 200));
      return readFileSync(join(data, 'console', 'w001.log'), 'latin1').includes('stuck');
    }, 10_000, 0);
    await waitFor(() => consoleEvents().length === 2, 10_000, 100);
    expect(consoleEvents()[1]!.detail).toMatch(/^no booted or failed within 4 s of power reset; last \d console lines:\n(stuck in firmware\n?)+$/);
  }, 30_000);

  it('PXE DHCP starts a recording, the initramfs\'s DHCP and a machine without a BMC do not; power off ends one quietly', async () => {
    events.emit({ mac: M1, host: 'w001', stage: 'dhcp-discover', detail: 'rolecast-init' });
    events.emit({ mac: M2, host: 'w002', stage: 'dhcp-discover', detail: 'PXEClient:Arch:00000:UNDI:002001' });
    await new Promise((r) => setTimeout(r, 300));
    expect(recorder.active).toBe(0);
    events.emit({ mac: M1, stage: 'dhcp-discover', detail: 'PXEClient:Arch:00000:UNDI:002001' });
    await waitFor(() => recorder.recording('w001'), 5000, 50);
    await new Promise((r) => setTimeout(r, 1000));
    events.emit({ mac: M1, host: 'w001', stage: 'power-done', detail: 'off ok' });
    await waitFor(() => !recorder.recording('w001'), 5000, 50);
    await new Promise((r) => setTimeout(r, 300));
    expect(consoleEvents()).toHaveLength(2);
  }, 30_000);

  it('a panic reboot: PXE DHCP again after the kernel went out ends that boot with its last screen and starts the next', async () => {
    events.emit({ mac: M1, stage: 'dhcp-discover', detail: 'PXEClient:Arch:00000:UNDI:002001' });
    await waitFor(() => recorder.recording('w001'), 5000, 50);
    events.emit({ mac: M1, stage: 'dhcp-discover', detail: 'PXEClient:Arch:00000:UNDI:002001' }); // iPXE asks twice: same boot
    await waitFor(async () => {
      print('[    1.234567] Kernel panic - not syncing: VFS: Unable to mount root fs\r\n');
      await new Promise((r) => setTimeout(r, 200));
      return readFileSync(join(data, 'console', 'w001.log'), 'latin1').includes('Kernel panic');
    }, 10_000, 0);
    expect(consoleEvents()).toHaveLength(2);
    events.emit({ mac: M1, host: 'w001', stage: 'http-kernel', detail: 'kernel' });
    events.emit({ mac: M1, stage: 'dhcp-discover', detail: 'PXEClient:Arch:00000:UNDI:002001' });
    await waitFor(() => consoleEvents().length === 3, 10_000, 50);
    expect(consoleEvents()[2]!.detail).toMatch(/^the boot did not finish: the machine went back to its firmware \(PXE DHCP\) without reporting booted; last \d console lines:\n[^]*Kernel panic - not syncing/);
    await waitFor(() => recorder.recording('w001'), 5000, 50); // the next boot is recorded
    events.emit({ mac: M1, host: 'w001', stage: 'power-request', detail: 'off by cli' }); // SOL let go before the power goes
    await waitFor(() => !recorder.recording('w001'), 5000, 50);
  }, 30_000);

  it('SOL held by another session is not taken over; the failed boot says why its console is empty', async () => {
    const other = spawn('stdbuf', ['-oL', 'ipmitool', '-I', 'lanplus', '-C', '3', '-H', '127.0.0.1', '-p', String(bmcPort), '-U', 'admin', '-E', 'sol', 'activate'], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, IPMI_PASSWORD: PASSWORD } });
    let otherOut = '';
    other.stdout.on('data', (d: Buffer) => { otherOut += d.toString(); });
    other.stderr.on('data', (d: Buffer) => { otherOut += d.toString(); });
    try {
      await waitFor(() => otherOut.includes('SOL Session operational'), 10_000, 50).catch((err: Error) => { throw new Error(`${err.message}: ${otherOut}`); });
      events.emit({ mac: M1, host: 'w001', stage: 'power-done', detail: 'on ok' });
      await waitFor(() => recorder.recording('w001'), 5000, 50);
      await new Promise((r) => setTimeout(r, 2500)); // the activation is refused meanwhile
      events.emit({ mac: M1, host: 'w001', stage: 'failed', detail: 'no lease' });
      await waitFor(() => consoleEvents().length === 4, 10_000, 50);
      expect(consoleEvents()[3]!.detail).toMatch(/^boot failed \(no lease\); the console printed nothing \(Serial over LAN not attached: BMC 127\.0\.0\.1:\d+: Serial over LAN is in use by another session/);
      expect(other.exitCode).toBeNull(); // still attached: never taken over
    } finally {
      other.stdin.write('~.');
      await waitFor(() => other.exitCode !== null, 5000, 50).catch(() => other.kill('SIGKILL'));
    }
  }, 30_000);
});
