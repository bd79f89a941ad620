/**
 * Master images that learn from the running box (issue 18), on real VMs: `rolecast serve` (DHCP + HTTP)
 * in a lab namespace; w101 and w102 are test-role machines booting the common initramfs (QEMU direct
 * kernel boot: the initramfs DHCPs from rolecast, fetches /rootfs/<mac>.tar through planBoot and
 * switch_roots into the busybox test image; the PXE chains themselves are proven in pxe-boot.test.ts).
 *
 * 1. w101 boots with `rolecast.run=<script>` on its kernel command line: the test image runs it on the
 *    booted box — change /etc/motd, add /etc/app.conf, `rolecast-capture --changed` — and its console
 *    shows the list the tool sent and the server's answer;
 * 2. `rolecast images versions test` has the captured version, `images diff test` exactly those two files;
 * 3. `images try test <v> --on w101`: `rolecast diff` says w101 changes, w101 reboots with the changes;
 * 4. `images promote test <v>`: w102 (never given the version before) boots with the changes;
 * 5. `images rollback test`: w102 reboots without them.
 * The test image prints the sha256 of /etc/motd and /etc/app.conf when they exist: that is the evidence.
 * About 5 direct boots of ~15-25 s under TCG, plus the initramfs build.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describeSystem, Lab } from '../helpers/netns.js';
import { startServe } from '../helpers/serve.js';
import { ARTIFACTS, directBootArgs, markers, nicArgs, runQemu, type VmResult } from '../helpers/qemu.js';
import { buildInitramfs } from '../../src/images/initramfs.js';
import { buildTestImage } from '../../src/images/testimage.js';

const ROOT = resolve(import.meta.dirname, '../..');
const SERVER = '10.0.0.1';
const BASE = `http://${SERVER}:8080`;
interface Box { host: string; mac: string; ip: string }
const W101: Box = { host: 'w101', mac: '52:54:00:00:02:01', ip: '10.0.0.101' };
const W102: Box = { host: 'w102', mac: '52:54:00:00:02:02', ip: '10.0.0.102' };
const MOTD_BASE = 'rolecast test image\n';
const MOTD_NEW = 'motd fixed on the running w101\n';
const APP_CONF = 'key=value\n';
const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const DONE = /rolecast: test image done|rolecast: FAILED|Kernel panic/;

/** The script the booted w101 runs (the test image's rolecast.run): what an operator would type. */
const SCRIPT = [
  `printf '${MOTD_NEW.replace(/\n/g, '\\n')}' > /etc/motd`,
  `printf '${APP_CONF.replace(/\n/g, '\\n')}' > /etc/app.conf`,
  '/usr/sbin/rolecast-capture -m "e2e: motd and app.conf" --changed',
].join('\n');

describeSystem('capture on a running VM: versions, diff, try on one machine, promote, rollback', ['qemu-system-x86_64', 'ip'], () => {
  const lab = new Lab('capt');
  const dir = mkdtempSync(join(tmpdir(), 'rolecast-e2e-capture-'));
  const cfgFile = join(dir, 'rolecast.yaml');
  const serverLogPath = join(ARTIFACTS, `capture-${process.pid}.rolecast.log`);
  let ns = '';
  let kernel = '';
  let initrd = '';
  let captured = '';

  /** The rolecast CLI as the operator runs it on the server host (files only, no network). */
  function rolecast(args: string[]): string {
    const r = spawnSync('node', ['--import', 'tsx', 'src/cli.ts', ...args, '--config', cfgFile], { encoding: 'utf8', cwd: ROOT });
    if (r.status !== 0) throw new Error(`rolecast ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
    return r.stdout;
  }

  beforeAll(async () => {
    const build = join(dir, 'images', 'build');
    const built = await buildInitramfs({ out: build });
    kernel = built.kernel;
    initrd = built.path;
    await buildTestImage(build);
    cpSync(join(ROOT, 'test/fixtures/profiles'), join(dir, 'profiles'), { recursive: true });
    const machines = join(dir, 'profiles/machines.yaml');
    writeFileSync(machines, readFileSync(machines, 'utf8').replace(/(host: w10[12],.*?)role: web/g, '$1role: test'));
    mkdirSync(join(dir, 'data'));
    writeFileSync(cfgFile, [`profilesDir: ${join(dir, 'profiles')}`, `dataDir: ${join(dir, 'data')}`, `imagesDir: ${join(dir, 'images')}`, `address: ${SERVER}`, ''].join('\n'));
    ns = lab.ns('capt');
    lab.bridge(ns, 'br0');
    lab.addr(ns, 'br0', `${SERVER}/24`);
    lab.tap(ns, 'br0', 'tap0');
    mkdirSync(ARTIFACTS, { recursive: true });
    await startServe(lab, ns, cfgFile, serverLogPath, () => undefined);
  }, 240_000);

  afterAll(async () => {
    await lab.cleanup();
    console.log(`evidence kept: ${serverLogPath}, serial logs in ${ARTIFACTS}`);
    rmSync(dir, { recursive: true, force: true });
  });

  /** Boot a test-role machine through the common initramfs; `run` goes to the test image as rolecast.run. */
  async function boot(name: string, m: Box, run?: string): Promise<{ vm: VmResult; lines: string[]; evidence: string }> {
    const append = `console=ttyS0 panic=5 net.ifnames=0 rolecast.url=${BASE} rolecast.mac=${m.mac} rolecast.host=${m.host} rolecast.role=test` +
      (run ? ` rolecast.run=${Buffer.from(run).toString('base64')}` : '');
    const vm = await runQemu(name, [...directBootArgs(kernel, initrd, append), ...nicArgs({ tap: 'tap0', mac: m.mac, model: 'virtio-net-pci', romfile: '' })],
      { prefix: ['ip', 'netns', 'exec', ns], timeoutMs: 180_000, until: DONE });
    const lines = markers(vm.log);
    const evidence = `serial: ${vm.logPath}; rolecast log: ${serverLogPath}`;
    expect(lines, evidence).toContain(`rolecast: booted role=test host=${m.host} hostname=${m.host}`);
    expect(lines, evidence).toContain(`rolecast: booted addr ${m.ip}/24`);
    return { vm, lines, evidence };
  }

  const motdLine = (content: string) => `rolecast: booted file /etc/motd sha256=${sha(content)}`;
  const appLine = `rolecast: booted file /etc/app.conf sha256=${sha(APP_CONF)}`;

  it('w101 changes /etc/motd, adds /etc/app.conf and runs rolecast-capture --changed on itself', async () => {
    const before = rolecast(['images', 'versions', 'test', '--json']);
    expect((JSON.parse(before) as { versions: unknown[] }).versions).toHaveLength(1);
    const { vm, lines, evidence } = await boot('capture-w101', W101, SCRIPT);
    expect(lines, evidence).toContain(motdLine(MOTD_BASE)); // booted the built version
    // The tool's list, exactly: the two changes and nothing else of the running box.
    const start = vm.log.indexOf('rolecast: run script start');
    const out = vm.log.slice(start, vm.log.indexOf('rolecast: run script exit=', start)).split(/\r?\n/).map((l) => l.trim());
    expect(out.filter((l) => /^[AMDPO-] \//.test(l)), evidence).toEqual(['A /etc/app.conf', 'M /etc/motd']);
    expect(lines, evidence).toContain('rolecast: run script exit=0');
    const answer = out.find((l) => l.startsWith('{"role":"test"'));
    expect(answer, evidence).toBeDefined();
    captured = (JSON.parse(answer!) as { version: string }).version;
    expect(captured).toMatch(/^test-[0-9a-f]{12}\.tar$/);
  }, 240_000);

  it('rolecast images versions shows the capture; images diff shows exactly those two files', () => {
    const table = rolecast(['images', 'versions', 'test']);
    const row = table.split('\n').find((l) => l.startsWith(captured.slice(5, 17)));
    expect(row, table).toMatch(/captured .* w101 +- +e2e: motd and app\.conf; 2 changes on /);
    const diff = rolecast(['images', 'diff', 'test']);
    const paths = diff.split('\n').filter((l) => /^[AMDPO] \//.test(l));
    expect(paths, diff).toEqual(['A /etc/app.conf', 'M /etc/motd']);
    expect(diff).toContain(`-${MOTD_BASE.trim()}\n+${MOTD_NEW.trim()}\n`);
    expect(diff).toContain(`+${APP_CONF.trim()}`);
  });

  it('images try on w101: rolecast diff says w101 changes; w101 reboots with the changes', async () => {
    rolecast(['images', 'try', 'test', captured.slice(5, 17), '--on', 'w101']);
    const rows = JSON.parse(rolecast(['diff', '--json'])) as { host: string; status: string }[];
    expect(rows.find((r) => r.host === 'w101')?.status).toBe('changed');
    expect(rows.find((r) => r.host === 'w102')?.status).toBe('never-served');
    const { lines, evidence } = await boot('capture-w101-try', W101);
    expect(lines, evidence).toContain(motdLine(MOTD_NEW));
    expect(lines, evidence).toContain(appLine);
    expect(rolecast(['images', 'versions', 'test'])).toMatch(/on w101/);
  }, 240_000);

  it('images promote: another machine of the role (w102) boots with the changes', async () => {
    rolecast(['images', 'promote', 'test', captured.slice(5, 17)]);
    const rows = JSON.parse(rolecast(['diff', '--json'])) as { host: string; status: string }[];
    expect(rows.find((r) => r.host === 'w101')?.status).toBe('unchanged'); // it has that version already
    const { lines, evidence } = await boot('capture-w102-promoted', W102);
    expect(lines, evidence).toContain(motdLine(MOTD_NEW));
    expect(lines, evidence).toContain(appLine);
  }, 240_000);

  it('images rollback: w102 reboots without them', async () => {
    rolecast(['images', 'rollback', 'test']);
    const rows = JSON.parse(rolecast(['diff', '--json'])) as { host: string; status: string }[];
    expect(rows.filter((r) => r.status === 'changed').map((r) => r.host).sort()).toEqual(['w101', 'w102']);
    const { lines, evidence } = await boot('capture-w102-rollback', W102);
    expect(lines, evidence).toContain(motdLine(MOTD_BASE));
    expect(lines.some((l) => l.includes('/etc/app.conf')), evidence).toBe(false);
  }, 240_000);
});
