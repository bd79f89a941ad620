import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildInitramfs, commonInitramfsImage, defaultKernelVersion, INITRAMFS_SRC } from '../../../src/images/initramfs.js';
import { moduleClosure } from '../../../src/images/modules.js';

const kver = defaultKernelVersion();

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
  }, 60_000);

  it('holds busybox, /init, the udhcpc hook, the wipe action, dev/console and the NIC modules in load order', async () => {
    const img = await commonInitramfsImage(kver);
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
