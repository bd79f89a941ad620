/** Every file a machine gets, its content hash, and the boot-config dispatcher. All pure. */
import { createHash } from 'node:crypto';
import type { BootTargetPlan } from '../boot/plan.js';
import type { Inventory, ResolvedMachine } from '../inventory/types.js';
import type { RenderContext, RenderedFile } from './types.js';
import { renderExtraFiles, renderHostname, renderHosts, renderMachineJson, renderSyslog } from './hostfiles.js';
import { renderIfupdown, renderNetworkd } from './network.js';
import { renderKeepalived } from './keepalived.js';
import { renderIpxeScript } from './ipxe.js';
import { renderPxelinuxConfig } from './pxelinux.js';
import { renderGrubConfig } from './grub.js';

export { renderIpxeScript, renderIpxeChain } from './ipxe.js';
export { renderPxelinuxConfig } from './pxelinux.js';
export { renderGrubConfig } from './grub.js';
export type { RenderContext, RenderedFile } from './types.js';

export function renderMachineFiles(rm: ResolvedMachine, inv: Inventory, ctx: RenderContext): RenderedFile[] {
  const files = [
    renderHostname(rm), renderHosts(rm, inv), renderMachineJson(rm, inv, ctx), renderIfupdown(rm, inv),
    ...renderNetworkd(rm, inv), ...renderSyslog(inv),
  ];
  const ka = renderKeepalived(rm, inv);
  if (ka) files.push(ka);
  // Extra files from the role and machine replace generated ones of the same path.
  const byPath = new Map(files.map((f) => [f.path, f]));
  for (const f of renderExtraFiles(rm, inv)) byPath.set(f.path, f);
  return [...byPath.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** sha256 over (path, mode, content) of every file in order: same files, same hash. */
export function machineContentHash(files: readonly RenderedFile[]): string {
  const h = createHash('sha256');
  for (const f of files) h.update(`${f.path}\0${f.mode.toString(8)}\0${f.secret ? 1 : 0}\0${Buffer.byteLength(f.content)}\0`).update(f.content);
  return h.digest('hex');
}

export function renderBootConfig(kind: 'ipxe' | 'pxelinux' | 'grub', plan: BootTargetPlan, inv: Inventory, ctx: RenderContext): string {
  if (kind === 'ipxe') return renderIpxeScript(plan, inv, ctx);
  if (kind === 'pxelinux') return renderPxelinuxConfig(plan, inv, ctx);
  return renderGrubConfig(plan, inv, ctx);
}
