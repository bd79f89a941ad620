/**
 * Golden files for every renderer, from the bundled example profiles. UPDATE_GOLDEN=1 rewrites them;
 * review the diff like code.
 */
import { describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadInventory, resolveMachine } from '../../../src/inventory/index.js';
import { renderBootConfig, renderIpxeChain, renderMachineFiles, machineContentHash } from '../../../src/render/index.js';
import { planBoot, type BootTargetPlan } from '../../../src/boot/plan.js';
import type { Inventory } from '../../../src/inventory/types.js';

const ROOT = resolve(import.meta.dirname, '../../..');
const GOLDEN = join(ROOT, 'test/golden/render');
const ctx = { baseUrl: 'http://10.0.0.1:8080', server: '10.0.0.1' };
const inv: Inventory = await loadInventory(join(ROOT, 'test/fixtures/profiles'));

function golden(name: string, content: string): void {
  const file = join(GOLDEN, name);
  if (process.env.UPDATE_GOLDEN === '1' || !existsSync(file)) {
    if (process.env.CI === 'true' && !existsSync(file)) throw new Error(`golden file ${name} is missing (run with UPDATE_GOLDEN=1 and commit it)`);
    mkdirSync(join(file, '..'), { recursive: true });
    writeFileSync(file, content);
  }
  expect(content, `golden ${name}`).toBe(readFileSync(file, 'utf8'));
}

function plan(host: string, arch: number, ipxe = true): BootTargetPlan {
  const m = inv.byHost.get(host)!;
  const p = planBoot({ mac: m.macs[0]!, protocol: 'http', arch, ipxe, pxe: true }, inv, ctx);
  if (p.action !== 'boot') throw new Error(p.reason);
  return p;
}

describe('machine files (golden)', () => {
  for (const host of ['lb1', 'lb2', 'w101', 'w106', 'db1', 'fs1']) {
    it(host, () => {
      const files = renderMachineFiles(resolveMachine(inv, inv.byHost.get(host)!), inv, ctx);
      for (const f of files) golden(`${host}${f.path}`, f.content);
      golden(`${host}.index`, files.map((f) => `${f.mode.toString(8)} ${f.secret ? 'secret' : 'public'} ${f.path}`).join('\n') + `\n${machineContentHash(files)}\n`);
      for (const f of files) expect(f.content).not.toMatch(/undefined|NaN|\[object Object\]/);
    });
  }
});

describe('boot configs (golden)', () => {
  const cases: Array<[string, 'ipxe' | 'pxelinux' | 'grub', string, number]> = [
    ['w101-bios.ipxe', 'ipxe', 'w101', 0], ['w101-efi.ipxe', 'ipxe', 'w101', 7], ['lb1-bios.ipxe', 'ipxe', 'lb1', 0],
    ['w101-bios.pxelinux', 'pxelinux', 'w101', 0], ['w101-efi.grub', 'grub', 'w101', 7], ['db1-arm64.grub', 'grub', 'db1', 11],
  ];
  it.each(cases)('%s', (name, kind, host, arch) => golden(name, renderBootConfig(kind, plan(host, arch), inv, ctx)));

  it('generic chain script', () => golden('boot.ipxe', renderIpxeChain(ctx)));

  // The boot token (issue 16) the edge minted for this script: on the kernel command line, after the role.
  const TOKEN = 'mia1b2c3.AbCdEfGhIjKlMnOpQrStUv';
  it.each([['lb1-bios-token.ipxe', 'ipxe', 0], ['lb1-bios-token.pxelinux', 'pxelinux', 0], ['lb1-efi-token.grub', 'grub', 7]] as const)('%s', (name, kind, arch) => {
    const text = renderBootConfig(kind, plan('lb1', arch), inv, ctx, TOKEN);
    golden(name, text);
    expect(text.match(/rolecast\.token=(\S+)/)?.[1]).toBe(TOKEN);
  });

  it('unknown machines boot the discovery target without a host', () => {
    const p = planBoot({ mac: '52:54:00:ab:cd:ef', protocol: 'http', arch: 0, ipxe: true, pxe: true }, inv, ctx);
    if (p.action !== 'boot') throw new Error(p.reason);
    const s = renderBootConfig('ipxe', p, inv, ctx);
    golden('unknown-rescue.ipxe', s);
    expect(s).not.toMatch(/rolecast\.host=/);
  });

  it('maintenance binaries chain (memtest) instead of kernel + initrd', () => {
    const lb = inv.byHost.get('w106')!;
    const withMemtest = { ...inv, byMac: new Map([[lb.macs[0]!, { ...lb, bootOnce: 'memtest' }]]) } as Inventory;
    const p = planBoot({ mac: lb.macs[0]!, protocol: 'http', arch: 0, ipxe: true, pxe: true }, withMemtest, ctx);
    if (p.action !== 'boot') throw new Error(p.reason);
    golden('w106-memtest.ipxe', renderBootConfig('ipxe', p, withMemtest, ctx));
    golden('w106-memtest-bios.grub', renderBootConfig('grub', p, withMemtest, ctx));
    expect(renderBootConfig('ipxe', p, withMemtest, ctx)).toContain('/images/memtest-bios console=ttyS0,115200 ||');
    // UEFI gets the role's per-firmware kernel: memtest86+'s EFI build, chainloaded.
    const u = planBoot({ mac: lb.macs[0]!, protocol: 'http', arch: 7, ipxe: true, pxe: true }, withMemtest, ctx);
    if (u.action !== 'boot') throw new Error(u.reason);
    expect(u.kernel).toBe('memtest-efi');
    golden('w106-memtest-uefi.ipxe', renderBootConfig('ipxe', u, withMemtest, ctx));
    golden('w106-memtest-uefi.grub', renderBootConfig('grub', u, withMemtest, ctx));
  });
});

describe('renderer rules', () => {
  it('is deterministic', () => {
    const m = resolveMachine(inv, inv.byHost.get('lb1')!);
    expect(renderMachineFiles(m, inv, ctx)).toEqual(renderMachineFiles(m, inv, ctx));
  });

  it('marks files with secrets as secret and keeps them out of public files', () => {
    const files = renderMachineFiles(resolveMachine(inv, inv.byHost.get('lb1')!), inv, ctx);
    const ka = files.find((f) => f.path === '/etc/keepalived/keepalived.conf')!;
    expect(ka.secret).toBe(true);
    expect(ka.mode).toBe(0o600);
    for (const f of files.filter((x) => !x.secret)) for (const s of Object.values(inv.secrets)) expect(f.content).not.toContain(s.slice(0, 8));
  });

  it('EFI iPXE scripts name the initrd on the command line, BIOS ones do not', () => {
    expect(renderBootConfig('ipxe', plan('w101', 7), inv, ctx)).toMatch(/ initrd=initrd /);
    expect(renderBootConfig('ipxe', plan('w101', 0), inv, ctx)).not.toMatch(/ initrd=/);
  });

  it('GRUB takes images over HTTP only where GRUB 2.06 can name the port (80), else over TFTP', () => {
    const p = plan('w101', 7);
    const on80 = renderBootConfig('grub', p, inv, { baseUrl: 'http://10.0.0.1', server: '10.0.0.1' });
    expect(on80).toContain('insmod http');
    expect(on80).toMatch(/linux \(http,10\.0\.0\.1\)\/images\/kernel /);
    expect(on80).toMatch(/initrd \(http,10\.0\.0\.1\)\/images\/initrd/);
    const on8080 = renderBootConfig('grub', p, inv, ctx);
    expect(on8080).not.toContain('insmod http');
    expect(on8080).toMatch(/linux \(tftp,10\.0\.0\.1\)\/images\/kernel /);
  });

  it('a role without a kernel image throws a RenderError instead of rendering undefined', () => {
    const p = plan('w101', 0);
    const broken = { ...p, kernel: 'nope' };
    expect(() => renderBootConfig('ipxe', broken, inv, ctx)).toThrow(/role "web" \(w101\): no kernel image "nope"/);
  });
});
