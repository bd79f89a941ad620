/**
 * The memtest86+ maintenance images (Debian's package, copied by buildMemtest) start and test memory,
 * BIOS (.bin under SeaBIOS) and UEFI (.efi under OVMF), loaded as the kernel the way a boot loader
 * would; memtest86+ 6.x draws its screen on the serial console with console=ttyS0. No network.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeSystem } from '../helpers/netns.js';
import { OVMF_CODE, OVMF_VARS, runQemu } from '../helpers/qemu.js';
import { buildMemtest } from '../../src/images/maintenance.js';

describeSystem('memtest86+ maintenance images boot (BIOS and UEFI)', ['qemu-system-x86_64'], () => {
  const dir = mkdtempSync(join(tmpdir(), 'rolecast-e2e-memtest-'));
  let bin = '';
  let efi = '';
  beforeAll(async () => {
    const built = await buildMemtest(dir);
    bin = built.find((b) => b.path.endsWith('.bin'))!.path;
    efi = built.find((b) => b.path.endsWith('.efi'))!.path;
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const RUNNING = /Memtest86\+ v\d[\s\S]*Status: Testing[\s\S]*Pass:\s+0\s+Errors: 0/;

  it('BIOS: memtest86+x64.bin runs its tests', async () => {
    const vm = await runQemu('memtest-bios', ['-nic', 'none', '-kernel', bin, '-append', 'console=ttyS0,115200'], { timeoutMs: 90_000, until: RUNNING });
    expect(vm.matched, `serial log: ${vm.logPath}`).toBe(true);
  }, 120_000);

  it('UEFI: memtest86+x64.efi runs its tests under OVMF', async () => {
    const vars = join(dir, 'OVMF_VARS.fd');
    copyFileSync(OVMF_VARS, vars);
    const vm = await runQemu('memtest-uefi', [
      '-nic', 'none', '-machine', 'q35',
      '-drive', `if=pflash,format=raw,readonly=on,file=${OVMF_CODE}`, '-drive', `if=pflash,format=raw,file=${vars}`,
      '-kernel', efi, '-append', 'console=ttyS0,115200',
    ], { timeoutMs: 120_000, until: RUNNING });
    expect(vm.matched, `serial log: ${vm.logPath}`).toBe(true);
  }, 150_000);
});
