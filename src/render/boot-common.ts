/** What every boot config needs: image URLs and the kernel command line the common initramfs reads. */
import type { BootTargetPlan } from '../boot/plan.js';
import { macToDashed } from '../boot/facts.js';
import { RenderError } from '../errors.js';
import type { Image, Inventory } from '../inventory/types.js';
import type { RenderContext } from './types.js';

export function isEfi(plan: BootTargetPlan): boolean {
  return plan.firmware.startsWith('uefi');
}

export function image(inv: Inventory, name: string | undefined, what: string, plan: BootTargetPlan): Image {
  const img = name === undefined ? undefined : inv.images[name];
  if (!img) throw new RenderError(`role "${plan.role.name}" (${plan.host ?? plan.mac}): no ${what} image${name ? ` "${name}"` : ''}`);
  return img;
}

export function imageUrl(ctx: RenderContext, img: Image): string {
  return `${ctx.baseUrl}/images/${img.name}`;
}

/** Kernel, initrds, and whether this target is a standalone binary (memtest) rather than Linux + initramfs. */
export function bootImages(plan: BootTargetPlan, inv: Inventory): { kernel: Image; initrds: Image[]; standalone: boolean } {
  const kernel = image(inv, plan.kernel, 'kernel', plan);
  const initrds = plan.role.initrd.map((n) => image(inv, n, 'initrd', plan));
  return { kernel, initrds, standalone: kernel.kind === 'binary' };
}

/**
 * The full command line: the role's, then the machine's, then what the common initramfs reads.
 * `efiInitrd` adds initrd=<name> entries: iPXE on EFI (2019 build) hands the initrd to the kernel's EFI
 * stub only by name (PXE-NOTES.md), without it the kernel panics with no root. `token` is this boot's
 * token (src/boot/token.ts), minted by the edge for a script that goes to the machine's own address.
 */
export function kernelCmdline(plan: BootTargetPlan, ctx: RenderContext, initrds: Image[], efiInitrd: boolean, token?: string): string {
  const parts = plan.cmdline ? [plan.cmdline] : [];
  if (efiInitrd) for (const i of initrds) parts.push(`initrd=${i.name}`);
  parts.push(`rolecast.url=${ctx.baseUrl}`, `rolecast.mac=${plan.mac}`);
  if (plan.host) parts.push(`rolecast.host=${plan.host}`);
  parts.push(`rolecast.role=${plan.role.name}`);
  if (token) parts.push(`rolecast.token=${token}`);
  if (plan.role.destructive && plan.machine?.confirmWipe) parts.push('rolecast.confirm_wipe=1');
  parts.push(`BOOTIF=${macToDashed(plan.mac)}`);
  return parts.join(' ');
}

/** A standalone binary's command line (memtest86+ reads console=): the role's, then the machine's. */
export function standaloneCmdline(plan: BootTargetPlan): string {
  return plan.cmdline;
}

export function title(plan: BootTargetPlan): string {
  return `${plan.host ?? `unknown ${plan.mac}`} as ${plan.role.name}${plan.bootOnce ? ' (boot once)' : ''}`;
}
