import { describe, expect, it } from 'vitest';
import { planBoot, scriptUrlFor, type BootPlan } from '../../../src/boot/plan.js';
import type { MachineFacts } from '../../../src/boot/facts.js';
import { inventory, machine, role } from './fixture.js';

const ctx = { baseUrl: 'http://10.0.0.1:8080' };
const WEB = '52:54:00:00:02:01';
const SPARE = '52:54:00:00:02:06';
const WIPE_OK = '52:54:00:00:09:01';
const WIPE_NO = '52:54:00:00:09:02';
const PXL = '52:54:00:00:03:01';
const OVR = '52:54:00:00:03:02';
const UNKNOWN = '52:54:00:ff:ff:ff';

const roles = [
  role('web'), role('rescue', { kind: 'maintenance' }), role('memtest', { kind: 'maintenance', loaders: { bios: 'memtest.0' } }),
  role('wipe', { kind: 'maintenance', destructive: true }), role('legacy', { boot: 'pxelinux' }),
];
const machines = [
  machine('w101', WEB, 'web'),
  machine('w106', SPARE, 'web', { bootOnce: 'memtest' }),
  machine('x1', WIPE_OK, 'web', { bootOnce: 'wipe', confirmWipe: true }),
  machine('x2', WIPE_NO, 'web', { bootOnce: 'wipe' }),
  machine('old1', PXL, 'legacy'),
  machine('ovr1', OVR, 'web', { loaders: { 'uefi-x64': 'snponly.efi' }, boot: 'grub' }),
];
const inv = inventory(machines, roles);
const invDiscover = inventory(machines, roles, { unknown: { policy: 'boot', target: 'rescue' } });
const invSiteLoader = inventory(machines, roles, { loaders: { bios: 'ipxe.pxe' } });

function f(mac: string, extra: Partial<MachineFacts> = {}): MachineFacts {
  return { mac, protocol: 'dhcp', ipxe: false, pxe: true, ...extra };
}

type Row = [string, MachineFacts, Partial<BootPlan> & Record<string, unknown>, typeof inv?];
const table: Row[] = [
  ['BIOS PXE gets undionly.kpxe over TFTP', f(WEB, { arch: 0 }), { action: 'boot', firmware: 'bios', bootfile: { kind: 'tftp', file: 'undionly.kpxe' } }],
  ['no option 93 is BIOS', f(WEB), { firmware: 'bios', bootfile: { kind: 'tftp', file: 'undionly.kpxe' } }],
  ['UEFI x64 arch 7 gets snponly.efi', f(WEB, { arch: 7 }), { firmware: 'uefi-x64', bootfile: { kind: 'tftp', file: 'snponly.efi' } }],
  ['UEFI x64 arch 9 gets snponly.efi', f(WEB, { arch: 9 }), { firmware: 'uefi-x64', bootfile: { kind: 'tftp', file: 'snponly.efi' } }],
  ['ARM64 arch 11 gets the arm64 iPXE', f(WEB, { arch: 11 }), { firmware: 'uefi-arm64', bootfile: { kind: 'tftp', file: 'ipxe-arm64.efi' } }],
  ['UEFI HTTP arch 16 gets an http URL', f(WEB, { arch: 16 }), { firmware: 'uefi-http-x64', bootfile: { kind: 'http', url: 'http://10.0.0.1:8080/loaders/ipxe.efi' } }],
  ['iPXE gets the script, never the loader', f(WEB, { arch: 0, ipxe: true }), { bootfile: { kind: 'http', url: `http://10.0.0.1:8080/boot/${WEB}.ipxe?arch=0` } }],
  ['iPXE on EFI gets the script with its arch (EFI needs initrd= on the cmdline)', f(WEB, { arch: 7, ipxe: true }), { bootfile: { kind: 'http', url: `http://10.0.0.1:8080/boot/${WEB}.ipxe?arch=7` } }],
  ['iPXE without option 93 gets the plain script URL', f(WEB, { ipxe: true }), { bootfile: { kind: 'http', url: `http://10.0.0.1:8080/boot/${WEB}.ipxe` } }],
  ['unsupported arch is ignored with a reason', f(WEB, { arch: 2 }), { action: 'ignore', reason: 'unsupported client architecture 2' }],
  ['unknown MAC, policy ignore', f(UNKNOWN, { arch: 0 }), { action: 'ignore', reason: 'unknown MAC (unknown-machine policy: ignore)' }],
  ['unknown MAC, policy boot rescue', f(UNKNOWN, { arch: 0 }), { action: 'boot', host: undefined, role: roles[1], bootfile: { kind: 'tftp', file: 'undionly.kpxe' } }, invDiscover],
  ['proxyDHCP ignores non-PXE clients', f(WEB, { protocol: 'proxydhcp', pxe: false }), { action: 'ignore', reason: 'not a PXE client' }],
  ['proxyDHCP answers iPXE without PXEClient', f(WEB, { protocol: 'proxydhcp', pxe: false, ipxe: true }), { action: 'boot' }],
  ['plain DHCP plans a non-PXE known client too', f(WEB, { pxe: false }), { action: 'boot', host: 'w101' }],
  ['boot-once maintenance target wins over the role', f(SPARE, { arch: 0 }), { bootOnce: true, bootfile: { kind: 'tftp', file: 'memtest.0' } }],
  ['destructive target with confirm_wipe boots', f(WIPE_OK, { arch: 0 }), { action: 'boot', bootOnce: true }],
  ['destructive target without confirm_wipe is refused', f(WIPE_NO, { arch: 0 }), { action: 'ignore', reason: 'x2: target "wipe" is destructive and the machine does not set confirm_wipe' }],
  ['role boot method pxelinux on BIOS', f(PXL, { arch: 0 }), { method: 'pxelinux', bootfile: { kind: 'tftp', file: 'pxelinux.0' } }],
  ['pxelinux machine behind an iPXE NIC ROM still gets pxelinux.0 (no loop)', f(PXL, { arch: 0, ipxe: true }), { method: 'pxelinux', bootfile: { kind: 'tftp', file: 'pxelinux.0' } }],
  ['role boot method pxelinux on UEFI', f(PXL, { arch: 7 }), { method: 'pxelinux', bootfile: { kind: 'tftp', file: 'syslinux.efi' } }],
  ['pxelinux has no ARM64 loader', f(PXL, { arch: 11 }), { action: 'ignore', reason: 'no pxelinux loader for firmware uefi-arm64' }],
  ['machine loader override', f(OVR, { arch: 7 }), { method: 'grub', bootfile: { kind: 'tftp', file: 'snponly.efi' } }],
  ['machine boot method grub on BIOS', f(OVR, { arch: 0 }), { method: 'grub', bootfile: { kind: 'tftp', file: 'grub/i386-pc/core.0' } }],
  ['site loader override', f(WEB, { arch: 0 }), { bootfile: { kind: 'tftp', file: 'ipxe.pxe' } }, invSiteLoader],
  ['TFTP asks: same answer as DHCP', f(WEB, { protocol: 'tftp', arch: 0 }), { bootfile: { kind: 'tftp', file: 'undionly.kpxe' } }],
];

describe('planBoot', () => {
  it.each(table)('%s', (_name, facts, expected, which) => {
    const plan = planBoot(facts, which ?? inv, ctx);
    expect(plan).toMatchObject(expected);
    if (plan.action === 'boot') expect(plan.scriptUrl).toBe(scriptUrlFor(ctx, facts.mac, facts.arch));
  });

  it('is deterministic: every protocol gets the same plan for the same client', () => {
    for (const mac of [WEB, SPARE, PXL, OVR, UNKNOWN]) {
      const plans = (['dhcp', 'tftp', 'http'] as const).map((protocol) => planBoot(f(mac, { protocol, arch: 7 }), invDiscover, ctx));
      expect(plans[1]).toEqual(plans[0]);
      expect(plans[2]).toEqual(plans[0]);
    }
  });

  it('never throws on odd facts', () => {
    for (const arch of [-1, 0, 1, 7, 65535, Number.NaN]) {
      expect(() => planBoot(f(UNKNOWN, { arch }), invDiscover, ctx)).not.toThrow();
    }
  });
});
