import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildInitramfs, commonInitramfsImage, defaultKernelVersion, INITRAMFS_SRC } from '../../../src/images/initramfs.js';
import { moduleClosure } from '../../../src/images/modules.js';

const kver = defaultKernelVersion();
// One build for the tests that only read the image (gzip -9 of ~15 MB is seconds on a loaded machine).
let shared: ReturnType<typeof commonInitramfsImage> | undefined;
const common = () => (shared ??= commonInitramfsImage(kver));

function cpioList(gz: Buffer): string[] {
  const r = spawnSync('cpio', ['-it', '--quiet'], { input: gunzipSync(gz), encoding: 'utf8', maxBuffer: 1 << 26 });
  expect(r.status, r.stderr).toBe(0);
  return r.stdout.trim().split('\n');
}

describe('common initramfs', () => {
  it('rebuilds byte-identical (gzip without name or time, sorted cpio, fixed metadata)', async () => {
    const dirs = [mkdtempSync(join(tmpdir(), 'rc-initrd-a-')), mkdtempSync(join(tmpdir(), 'rc-initrd-b-'))];
    try {
      const [a, b] = [await buildInitramfs({ out: dirs[0]! }), await buildInitramfs({ out: dirs[1]! })];
      expect(a.sha256).toBe(b.sha256);
      const bytes = readFileSync(a.path);
      expect(bytes.equals(readFileSync(b.path))).toBe(true);
      // RFC 1952: FLG (byte 3) without FNAME, MTIME (bytes 4-7) zero.
      expect(bytes[3]! & 0x08).toBe(0);
      expect(bytes.readUInt32LE(4)).toBe(0);
      expect(readFileSync(a.kernel).equals(readFileSync(`/boot/vmlinuz-${kver}`))).toBe(true);
    } finally {
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
    }
  }, 240_000);

  it('holds busybox, /init, the udhcpc hook, the wipe action, dev/console and the NIC modules in load order', async () => {
    const img = await common();
    const names = cpioList(img.image);
    for (const n of ['init', 'bin/busybox', 'dev/console', 'etc/udhcpc.script', 'lib/rolecast/wipe.sh', 'lib/rolecast-modules/order', 'usr/sbin', 'newroot']) {
      expect(names).toContain(n);
    }
    const order = img.modules.files.map((f) => f.split('/').pop()!.replace(/\.ko$/, ''));
    for (const m of ['virtio_net', 'virtio_pci', 'e1000', 'e1000e', 'igb', 'virtio_blk', 'ahci', 'nvme']) expect(order).toContain(m);
    const before = (a: string, b: string) => expect(order.indexOf(a), `${a} before ${b}`).toBeLessThan(order.indexOf(b));
    before('virtio_ring', 'virtio_net');
    before('net_failover', 'virtio_net');
    before('virtio_pci_modern_dev', 'virtio_pci');
    // softdep: libcrc32c needs a crc32c provider inserted first (no modprobe to fetch it on demand).
    before('crc32c_generic', 'libcrc32c');
    before('libcrc32c', 'bnx2x');
  }, 180_000); // the first to build the common image (gzip -9 of ~15 MB: slow on a loaded box)

  it('lets busybox modprobe pick drivers by modalias: modules.dep (dependencies last-loaded first, softdeps included) and modules.alias of the image\'s modules', async () => {
    const img = await common();
    const root = mkdtempSync(join(tmpdir(), 'rc-initrd-x-'));
    try {
      const x = spawnSync('cpio', ['-id', '--quiet'], { cwd: root, input: gunzipSync(img.image), maxBuffer: 1 << 26 });
      expect(x.status).toBe(0);
      const mdir = join(root, 'lib/modules', kver);
      const dep = readFileSync(join(mdir, 'modules.dep'), 'utf8').split('\n').filter(Boolean);
      expect(dep).toHaveLength(img.modules.files.length);
      expect(dep).toContain('rolecast/virtio_net.ko: rolecast/net_failover.ko rolecast/failover.ko rolecast/virtio.ko rolecast/virtio_ring.ko');
      expect(dep.find((l) => l.startsWith('rolecast/bnx2x.ko:'))).toMatch(/libcrc32c\.ko .*crc32c_generic\.ko/);
      const alias = readFileSync(join(mdir, 'modules.alias'), 'utf8');
      expect(alias).toMatch(/^alias pci:v00008086d0000100Esv\*sd\*bc\*sc\*i\* e1000$/m);
      expect(alias).not.toMatch(/ (snd_|usb_storage)/); // only modules the image carries
      if (process.getuid?.() !== 0) return; // the rest runs busybox in a chroot
      // busybox reads /lib/modules/$(uname -r): give the host's release the image's tables.
      symlinkSync(kver, join(root, 'lib/modules', release()));
      const probe = (...aliases: string[]) => spawnSync('chroot', [root, '/bin/busybox', 'modprobe', '-D', '-a', ...aliases], { encoding: 'utf8' }).stdout
        .split('\n').map((l) => /\/rolecast\/([^/]+)\.ko/.exec(l)?.[1]).filter(Boolean);
      // QEMU's e1000, and virtio-net behind virtio_pci: the bus driver, then (next scan) the NIC.
      expect(probe('pci:v00008086d0000100Esv00001AF4sd00001100bc02sc00i00')).toEqual(['e1000']);
      expect(probe('pci:v00001AF4d00001000sv00001AF4sd00000001bc02sc00i00')).toEqual(['virtio_ring', 'virtio_pci_modern_dev', 'virtio_pci_legacy_dev', 'virtio', 'virtio_pci']);
      expect(probe('virtio:d00000001v00001AF4')).toEqual(['virtio_ring', 'virtio', 'failover', 'net_failover', 'virtio_net']);
      expect(probe('pci:v00001234d00001111sv00001AF4sd00001100bc03sc00i00')).toEqual([]); // the VGA: nothing
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('reports wanted modules the kernel does not have instead of failing', () => {
    const set = moduleClosure(kver, ['e1000', 'no_such_driver_xyz']);
    expect(set.missing).toEqual(['no_such_driver_xyz']);
    expect(set.files.some((f) => f.endsWith('/e1000.ko'))).toBe(true);
  });

  it('ships shell scripts busybox sh accepts', () => {
    for (const f of ['init', 'udhcpc.script', 'wipe.sh']) {
      const r = spawnSync('/bin/busybox', ['sh', '-n', join(INITRAMFS_SRC, f)], { encoding: 'utf8' });
      expect(r.status, `${f}: ${r.stderr}`).toBe(0);
    }
  });
});
