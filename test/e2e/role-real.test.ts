/**
 * A real role image (Debian bookworm lb: keepalived, ipvsadm, systemd, built with mmdebstrap) through
 * the common initramfs: direct kernel boot in a lab namespace, dnsmasq for DHCP and the small HTTP
 * server serving the image composed with a machine file (rolecast's own composeRootfs). systemd must
 * reach multi-user and the serial login prompt with the pre-seeded host name. ~250 MB image, 1 GiB
 * VM, minutes under TCG: only with ROLECAST_TEST_MMDEBSTRAP=1.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWriteStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeSystem, Lab } from '../helpers/netns.js';
import { startMiniBootLab } from '../helpers/bootlab.js';
import { directBootArgs, nicArgs, runQemu } from '../helpers/qemu.js';
import { buildInitramfs } from '../../src/images/initramfs.js';
import { buildRoleImage } from '../../src/images/role.js';
import { composeRootfs } from '../../src/rootfs/compose.js';

const MAC = '52:54:00:00:01:01';
const enabled = process.env.ROLECAST_TEST_MMDEBSTRAP === '1';
const suite = enabled ? describeSystem : (name: string, _n: string[], fn: () => void) => describe.skip(`${name} (set ROLECAST_TEST_MMDEBSTRAP=1)`, fn);

suite('real lb role image boots to a login prompt through the common initramfs', ['qemu-system-x86_64', 'dnsmasq', 'mmdebstrap'], () => {
  const lab = new Lab('role');
  const dir = mkdtempSync(join(tmpdir(), 'rolecast-e2e-role-'));
  let ns = '';
  let kernel = '';
  let initrd = '';

  beforeAll(async () => {
    const built = await buildInitramfs({ out: dir });
    kernel = built.kernel;
    initrd = built.path;
    const lb = await buildRoleImage('lb', { out: dir });
    const files = [{ path: '/etc/hostname', mode: 0o644, content: 'lb1\n', secret: false }];
    await pipeline(composeRootfs({ basePath: lb.path, files }), createWriteStream(join(dir, `${MAC}.tar`)));
    writeFileSync(join(dir, 'events.jsonl'), '');
    ns = await startMiniBootLab(lab, { server: '10.0.0.1', dir, eventsFile: join(dir, 'events.jsonl'), failFirst: 0 });
  }, 400_000);

  afterAll(async () => {
    await lab.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  it('switch_roots into systemd, which reaches multi-user and the serial getty as lb1', async () => {
    const vm = await runQemu('role-real-lb', [
      ...directBootArgs(kernel, initrd, `console=ttyS0 panic=5 rolecast.url=http://10.0.0.1:8080 rolecast.mac=${MAC} rolecast.host=lb1 rolecast.role=lb`),
      ...nicArgs({ tap: 'tap0', mac: MAC, model: 'virtio-net-pci', romfile: '' }), '-m', '1024',
    ], { prefix: ['ip', 'netns', 'exec', ns], timeoutMs: 400_000, until: /lb1 login:|rolecast: FAILED|Kernel panic/ });
    const evidence = `serial log: ${vm.logPath}`;
    expect(vm.log, evidence).toContain('rolecast: stage booted role=lb');
    expect(vm.log, evidence).toMatch(/Welcome to .*Debian GNU\/Linux 12/);
    expect(vm.log, evidence).toMatch(/Reached target .*multi-user\.target/);
    expect(vm.log, evidence).toMatch(/lb1 login:/);
    const events = readFileSync(join(dir, 'events.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { kind: string; body?: { stage: string; detail?: string } });
    expect(events.filter((e) => e.kind === 'event').at(-1)?.body, evidence).toEqual({ stage: 'booted', detail: 'switch_root role=lb host=lb1' });
  }, 450_000);
});
