/**
 * PXELINUX configs (pxelinux.cfg/01-<mac>). Plain pxelinux.0 speaks only TFTP, so images are named by
 * TFTP path `images/<name>`, which rolecast's TFTP server maps to the same files as /images/<name>.
 */
import type { BootTargetPlan } from '../boot/plan.js';
import type { Inventory } from '../inventory/types.js';
import type { RenderContext } from './types.js';
import { bootImages, kernelCmdline, standaloneCmdline, title } from './boot-common.js';

export function renderPxelinuxConfig(plan: BootTargetPlan, inv: Inventory, ctx: RenderContext, token?: string): string {
  const { kernel, initrds, standalone } = bootImages(plan, inv);
  const lines = [`# rolecast: ${title(plan)}`, 'DEFAULT rolecast', 'PROMPT 0', 'TIMEOUT 0', '', 'LABEL rolecast', `  MENU LABEL ${title(plan)}`];
  lines.push(`  KERNEL images/${kernel.name}`);
  if (!standalone) {
    if (initrds.length) lines.push(`  INITRD ${initrds.map((i) => `images/${i.name}`).join(',')}`);
    // BOOTIF is already in the command line; IPAPPEND 2 would add it twice.
    lines.push(`  APPEND ${kernelCmdline(plan, ctx, initrds, false, token)}`);
  } else if (standaloneCmdline(plan)) {
    lines.push(`  APPEND ${standaloneCmdline(plan)}`);
  }
  lines.push('');
  return lines.join('\n');
}
