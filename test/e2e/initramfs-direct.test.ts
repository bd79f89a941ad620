/**
 * The common initramfs and the CI test image, proven without rolecast: a QEMU VM (TCG) boots Debian's
 * kernel with our initramfs directly (-kernel/-initrd), inside a lab namespace where dnsmasq answers
 * DHCP and a small Node HTTP server serves the machine's rootfs tar and records phone-home POSTs.
 * The first rootfs request gets a 503, so the retry path runs. The serial log is the evidence.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeSystem, Lab } from '../helpers/netns.js';
import { startMiniBootLab } from '../helpers/bootlab.js';
import { directBootArgs, markers, nicArgs, runQemu } from '../helpers/qemu.js';
import { buildInitramfs } from '../../src/images/initramfs.js';
import { testImageTar } from '../../src/images/testimage.js';

const MAC = '52:54:00:00:01:01';
const MAC_MISSING = '52:54:00:00:09:09'; // no rootfs for it: every download is a 404
const MAC_RESCUE = '52:54:00:00:09:0a';
const SERVER = '10.0.0.1';
const URL_BASE = `http://${SERVER}:8080`;

// Pre-seeded files as rolecast would render them for lb1 (content is arbitrary here; the hashes matter).
const FILES: Record<string, string> = {
  '/etc/hostname': 'lb1\n',
  '/etc/network/interfaces': 'auto lo\niface lo inet loopback\n\nauto bond0\niface bond0 inet static\n  address 10.0.0.11/24\n',
  '/etc/keepalived/keepalived.conf': 'vrrp_instance VI_WAN {\n  interface bond0.100\n  virtual_router_id 51\n}\n',
};
const sha = (s: string) => createHash('sha256').update(s).digest('hex');

interface Recorded { kind: 'request' | 'event'; url?: string; failed?: boolean; mac?: string; type?: string; body?: { stage: string; detail?: string } }


describeSystem('common initramfs + test image boot in a VM (direct kernel boot, no rolecast)', ['qemu-system-x86_64', 'dnsmasq', 'ip'], () => {
  const lab = new Lab('init');
  const dir = mkdtempSync(join(tmpdir(), 'rolecast-e2e-init-'));
  const eventsFile = join(dir, 'events.jsonl');
  let ns = '';
  let kernel = '';
  let initrd = '';

  beforeAll(async () => {
    const built = await buildInitramfs({ out: dir });
    kernel = built.kernel;
    initrd = built.path;
    const extra = Object.entries(FILES).map(([path, content]) => ({ type: 'file' as const, path, mode: 0o644, data: Buffer.from(content) }));
    writeFileSync(join(dir, `${MAC}.tar`), await testImageTar(extra));
    writeFileSync(join(dir, `${MAC_RESCUE}.tar`), await testImageTar());
    writeFileSync(eventsFile, '');

    ns = await startMiniBootLab(lab, { server: SERVER, dir, eventsFile, failFirst: 1, reservations: { [MAC]: '10.0.0.11' } });
  }, 90_000);

  afterAll(async () => {
    await lab.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  const boot = (name: string, mac: string, append: string, until: RegExp) => runQemu(name, [
    ...directBootArgs(kernel, initrd, `console=ttyS0 panic=5 rolecast.url=${URL_BASE} ${append}`),
    ...nicArgs({ tap: 'tap0', mac, model: 'virtio-net-pci', romfile: '' }),
  ], { prefix: ['ip', 'netns', 'exec', ns], timeoutMs: 150_000, until });
  const recorded = () => readFileSync(eventsFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Recorded);

  it('DHCPs, retries the rootfs, unpacks it, reports every stage and switch_roots into the image', async () => {
    // BOOTIF in upper case and no rolecast.mac: the PXELINUX form must be enough to find the NIC.
    const append = `console=ttyS0 panic=5 rolecast.url=${URL_BASE} rolecast.host=lb1 rolecast.role=test BOOTIF=01-${MAC.toUpperCase().replace(/:/g, '-')}`;
    const vm = await runQemu('initramfs-direct', [
      ...directBootArgs(kernel, initrd, append),
      // e1000 without its option ROM: the kernel's driver, and its ~2 s carrier delay, are what is tested.
      ...nicArgs({ tap: 'tap0', mac: MAC, model: 'e1000', romfile: '' }),
    ], { prefix: ['ip', 'netns', 'exec', ns], timeoutMs: 150_000, until: /rolecast: test image done|rolecast: FAILED|Kernel panic/ });
    const evidence = `serial log: ${vm.logPath}`;
    const m = markers(vm.log);
    const has = (re: RegExp) => expect(m.some((l) => re.test(l)), `${re} in markers:\n${m.join('\n')}\n${evidence}`).toBe(true);

    has(new RegExp(`^rolecast: stage cmdline url=${URL_BASE} mac=${MAC} host=lb1 role=test action=boot$`));
    has(/^rolecast: stage modules loaded=\d+ of=\d+$/);
    has(new RegExp(`^rolecast: stage link iface=eth0 mac=${MAC}$`));
    has(/^rolecast: stage dhcp ip=10\.0\.0\.11 mask=24 .*server=10\.0\.0\.1$/);
    has(/^rolecast: fetch attempt 1 failed: wget: server returned error: HTTP\/1\.1 503 Service Unavailable; tar: short read$/);
    has(/^rolecast: stage unpacked \d+ MiB$/);
    for (const [path, content] of Object.entries(FILES)) {
      has(new RegExp(`^rolecast: file ${path} sha256=${sha(content)}$`));
      has(new RegExp(`^rolecast: booted file ${path} sha256=${sha(content)}$`));
    }
    has(/^rolecast: stage switch_root role=test$/);
    has(/^rolecast: booted role=test host=lb1 hostname=lb1$/);
    has(/^rolecast: booted addr 10\.0\.0\.11\/24$/);
    has(/^rolecast: phone-home booted ok$/);
    has(/^rolecast: test image done, powering off$/);
    expect(m.some((l) => l.includes('FAILED')), evidence).toBe(false);

    const rec = recorded().filter((r) => r.kind === 'request' || r.mac === MAC);
    const gets = rec.filter((r) => r.kind === 'request');
    expect(gets.map((g) => [g.url, g.failed])).toEqual([[`/rootfs/${MAC}.tar`, true], [`/rootfs/${MAC}.tar`, false]]);
    const events = rec.filter((r) => r.kind === 'event');
    expect(events.every((e) => e.type === 'application/json'), evidence).toBe(true);
    const stages = events.map((e) => `${e.body!.stage}:${(e.body!.detail ?? '').split(' ')[0]}`);
    expect(stages, evidence).toEqual(['initramfs:dhcp', 'initramfs:fetch', 'initramfs:fetch', 'initramfs:unpacked', 'initramfs:switch_root', 'booted:test']);
    expect(events[2]!.body!.detail).toMatch(/^fetch attempt 1 failed/);
  }, 180_000);

  it('a rootfs that cannot be fetched ends in "failed" with the reason, after the configured retries', async () => {
    const vm = await boot('initramfs-fail', MAC_MISSING, `rolecast.mac=${MAC_MISSING} rolecast.retries=2`, /rolecast: dropping to a shell/);
    const m = markers(vm.log);
    const evidence = `markers:\n${m.join('\n')}\nserial log: ${vm.logPath}`;
    expect(m.filter((l) => /^rolecast: fetch attempt \d failed: .*404/.test(l)), evidence).toHaveLength(2);
    expect(m, evidence).toContain('rolecast: FAILED: rootfs download failed after 2 attempts: wget: server returned error: HTTP/1.1 404 Not Found; tar: short read');
    const failed = recorded().filter((r) => r.kind === 'event' && r.mac === MAC_MISSING && r.body?.stage === 'failed');
    expect(failed.map((f) => f.body!.detail), evidence).toEqual(['rootfs download failed after 2 attempts: wget: server returned error: HTTP/1.1 404 Not Found; tar: short read']);
  }, 180_000);

  it('rolecast.action=rescue: the test image reports booted and stays on a console shell', async () => {
    const vm = await boot('initramfs-rescue', MAC_RESCUE, `rolecast.mac=${MAC_RESCUE} rolecast.action=rescue`, /rolecast: rescue shell on the console/);
    const m = markers(vm.log);
    expect(m, vm.logPath).toContain('rolecast: phone-home booted ok');
    expect(m, vm.logPath).toContain('rolecast: rescue shell on the console (poweroff -f to stop)');
    expect(m, vm.logPath).not.toContain('rolecast: test image done, powering off');
    const booted = recorded().filter((r) => r.kind === 'event' && r.mac === MAC_RESCUE && r.body?.stage === 'booted');
    expect(booted.map((b) => b.body!.detail)).toEqual(['test image role=? host=? action=rescue']);
  }, 180_000);
});
