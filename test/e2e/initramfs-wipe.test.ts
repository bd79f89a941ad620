/**
 * The disk-wipe action of the common initramfs (rolecast.action=wipe) in a VM with virtual disks and
 * no network device at all: it wipes only with rolecast.confirm_wipe=1, wipes every writable local
 * disk to its last sector (an odd size, so the partial-MiB tail is covered), and leaves a read-only
 * disk alone. The disk images are files in a temp directory; nothing else is touched.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeSystem } from '../helpers/netns.js';
import { directBootArgs, markers, runQemu } from '../helpers/qemu.js';
import { buildInitramfs } from '../../src/images/initramfs.js';

const SIZE = 8 * 1024 * 1024 + 3 * 512;

function patterned(): Buffer {
  const b = Buffer.alloc(SIZE);
  for (let i = 0; i < SIZE; i++) b[i] = (i * 7 + 0xa5) & 0xff;
  return b;
}

describeSystem('initramfs disk wipe (VM, virtual disks, no network)', ['qemu-system-x86_64'], () => {
  const dir = mkdtempSync(join(tmpdir(), 'rolecast-e2e-wipe-'));
  let kernel = '';
  let initrd = '';
  const pattern = patterned();

  beforeAll(async () => {
    const built = await buildInitramfs({ out: dir });
    kernel = built.kernel;
    initrd = built.path;
  }, 60_000);

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  function disks(tag: string): { rw: string; ro: string; args: string[] } {
    const rw = join(dir, `${tag}-rw.img`);
    const ro = join(dir, `${tag}-ro.img`);
    writeFileSync(rw, pattern);
    writeFileSync(ro, pattern);
    return { rw, ro, args: ['-nic', 'none', '-drive', `file=${rw},format=raw,if=virtio`, '-drive', `file=${ro},format=raw,if=virtio,readonly=on`] };
  }

  it('refuses without rolecast.confirm_wipe=1 and leaves every disk as it was', async () => {
    const d = disks('refuse');
    const vm = await runQemu('wipe-refused', [...directBootArgs(kernel, initrd, 'console=ttyS0 panic=5 rolecast.action=wipe'), ...d.args],
      { timeoutMs: 120_000, until: /rolecast: dropping to a shell/ });
    const m = markers(vm.log);
    expect(m, `serial log: ${vm.logPath}`).toContain('rolecast: FAILED: wipe refused: rolecast.confirm_wipe=1 is not on the kernel command line (confirm it in the machine\'s entry)');
    expect(m.some((l) => l.startsWith('rolecast: stage wipe')), `serial log: ${vm.logPath}`).toBe(false);
    expect(readFileSync(d.rw).equals(pattern)).toBe(true);
    expect(readFileSync(d.ro).equals(pattern)).toBe(true);
  }, 150_000);

  it('with confirmation overwrites the writable disk to its last byte and skips the read-only one', async () => {
    const d = disks('confirm');
    const vm = await runQemu('wipe-confirmed', [...directBootArgs(kernel, initrd, 'console=ttyS0 panic=5 rolecast.action=wipe rolecast.confirm_wipe=1'), ...d.args],
      { timeoutMs: 150_000, until: /rolecast: stage booted wipe complete|rolecast: FAILED/ });
    const evidence = `serial log: ${vm.logPath}`;
    const m = markers(vm.log);
    expect(m, evidence).toContain('rolecast: stage wipe start');
    expect(m, evidence).toContain('rolecast: stage wipe vda 8 MiB');
    // virtio-blk on a raw file has no discard here, so the overwrite path (random pass + zeros) runs.
    expect(m, evidence).toContain('rolecast: wipe vda done method=overwrite passes=1+zero');
    expect(m.some((l) => /wipe vdb/.test(l)), evidence).toBe(false);
    expect(m, evidence).toContain('rolecast: stage booted wipe complete: vda:overwrite passes=1+zero');
    const after = readFileSync(d.rw);
    expect(after.length).toBe(SIZE);
    expect(after.every((b) => b === 0), 'every byte of the wiped disk is zero').toBe(true);
    expect(readFileSync(d.ro).equals(pattern)).toBe(true);
  }, 180_000);
});
