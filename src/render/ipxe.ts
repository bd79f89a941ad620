/** iPXE scripts: the per-machine boot script and the generic chain script. */
import type { BootTargetPlan } from '../boot/plan.js';
import type { Inventory } from '../inventory/types.js';
import type { RenderContext } from './types.js';
import { bootImages, imageUrl, isEfi, kernelCmdline, standaloneCmdline, title } from './boot-common.js';

/** `token`: this boot's token for the kernel command line (none when the script goes elsewhere). */
export function renderIpxeScript(plan: BootTargetPlan, inv: Inventory, ctx: RenderContext, token?: string): string {
  const { kernel, initrds, standalone } = bootImages(plan, inv);
  const lines = ['#!ipxe', `# rolecast: ${title(plan)}`, `echo rolecast: booting ${title(plan)}`];
  if (standalone) {
    // memtest86+ and other standalone binaries: hand over with the role's own arguments only (no initrd,
    // no rolecast.* parameters).
    const args = standaloneCmdline(plan);
    lines.push(`chain --autofree ${imageUrl(ctx, kernel)}${args ? ` ${args}` : ''} || goto failed`);
  } else {
    const cmdline = kernelCmdline(plan, ctx, initrds, isEfi(plan), token);
    lines.push(`kernel ${imageUrl(ctx, kernel)} ${cmdline} || goto failed`);
    for (const i of initrds) lines.push(`initrd --name ${i.name} ${imageUrl(ctx, i)} || goto failed`);
    lines.push('boot || goto failed');
  }
  // A failed download must not fall through to the next boot device silently: say why and retry.
  lines.push(':failed', 'echo rolecast: boot failed (${errno}); retrying in 10 s', 'sleep 10', `chain --replace ${plan.scriptUrl}`, '');
  return lines.join('\n');
}

/** /boot.ipxe: for iPXE builds with an embedded script or a static DHCP file name; chains by MAC. */
export function renderIpxeChain(ctx: RenderContext): string {
  return ['#!ipxe', '# rolecast: chain to this machine\'s own script', `chain ${ctx.baseUrl}/boot/\${net0/mac}.ipxe || goto failed`,
    ':failed', 'echo rolecast: no boot script for ${net0/mac} (${errno}); retrying in 10 s', 'sleep 10', `chain ${ctx.baseUrl}/boot.ipxe`, ''].join('\n');
}

/**
 * A machine that cannot boot because images it needs are missing on the server: print which and how to fix
 * it on the console, and ask again in a minute (the images may be built meanwhile) — instead of fetching a
 * kernel that 404s every ten seconds.
 */
export function renderIpxeUnbootable(plan: BootTargetPlan, problems: readonly string[], fix: string): string {
  const say = (s: string) => `echo ${s.replace(/[$\n]/g, ' ')}`;
  return ['#!ipxe', `# rolecast: ${title(plan)} cannot boot`, say(`rolecast: cannot boot ${title(plan)}: missing on the server:`),
    ...problems.map((p) => say(`  ${p}`)), say(`rolecast: fix: ${fix}`), 'echo rolecast: asking again in 60 s', 'sleep 60',
    `chain --replace ${plan.scriptUrl}`, ''].join('\n');
}
