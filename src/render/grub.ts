/**
 * GRUB configs (grub.cfg-01-<mac>, or /boot/<mac>/grub.cfg over HTTP). Images come over HTTP when the
 * server's HTTP port is 80: GRUB 2.06 (Debian 12) cannot name any other port — `(http,host:port)` is
 * "disk not found" there, seen in the e2e boot — and over TFTP, `(tftp,server)`, otherwise.
 */
import type { BootTargetPlan } from '../boot/plan.js';
import type { Inventory } from '../inventory/types.js';
import type { RenderContext } from './types.js';
import { standaloneCmdline, bootImages, isEfi, kernelCmdline, title } from './boot-common.js';

function grubOverHttp(ctx: RenderContext): boolean {
  const u = new URL(ctx.baseUrl);
  return u.protocol === 'http:' && u.port === '';
}

function grubHttpPath(ctx: RenderContext, name: string): string {
  const u = new URL(ctx.baseUrl);
  if (!grubOverHttp(ctx)) return `(tftp,${ctx.server})/images/${name}`;
  return `(http,${u.hostname})${u.pathname.replace(/\/$/, '')}/images/${name}`;
}

export function renderGrubConfig(plan: BootTargetPlan, inv: Inventory, ctx: RenderContext, token?: string): string {
  const { kernel, initrds, standalone } = bootImages(plan, inv);
  const efi = isEfi(plan);
  const lines = [`# rolecast: ${title(plan)}`, 'set timeout=0', 'set default=0', ...(grubOverHttp(ctx) ? ['insmod http'] : []), '', `menuentry '${title(plan).replace(/'/g, '')}' {`];
  if (standalone) {
    // memtest86+ .efi is chainloaded on UEFI; its .bin boots with the 16-bit Linux protocol on BIOS.
    const args = standaloneCmdline(plan);
    lines.push(`  ${efi ? 'chainloader' : 'linux16'} ${grubHttpPath(ctx, kernel.name)}${args ? ` ${args}` : ''}`);
  } else {
    lines.push(`  echo 'rolecast: loading ${kernel.name}'`);
    lines.push(`  linux ${grubHttpPath(ctx, kernel.name)} ${kernelCmdline(plan, ctx, initrds, false, token)}`);
    if (initrds.length) lines.push(`  initrd ${initrds.map((i) => grubHttpPath(ctx, i.name)).join(' ')}`);
  }
  lines.push('}', '');
  return lines.join('\n');
}
