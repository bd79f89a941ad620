/** Every file a machine gets, its content hash, and the boot-config dispatcher. All pure. */
import { createHash } from 'node:crypto';
import type { BootTargetPlan } from '../boot/plan.js';
import type { Inventory, ResolvedMachine } from '../inventory/types.js';
import type { RenderContext, RenderedFile } from './types.js';
import { renderCaptureKey, renderExtraFiles, renderHostname, renderHosts, renderMachineJson, renderSyslog } from './hostfiles.js';
export { renderUnknownFiles } from './hostfiles.js';
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
    renderHostname(rm), renderHosts(inv), renderMachineJson(rm, inv, ctx), renderIfupdown(rm, inv),
    ...renderNetworkd(rm, inv), ...renderSyslog(inv), ...renderCaptureKey(rm, ctx),
  ];
  const ka = renderKeepalived(rm, inv);
  if (ka) files.push(ka);
  // Extra files from the role and machine replace generated ones of the same path.
  const byPath = new Map(files.map((f) => [f.path, f]));
  for (const f of renderExtraFiles(rm, inv)) byPath.set(f.path, f);
  return [...byPath.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

// Digest of each large rendered file, kept as long as the file object lives: /etc/hosts is one object
// per snapshot (O(N) bytes), so it is hashed once per inventory version, not once per machine. Small
// files go into the machine's hash directly (a digest object per file costs more than their bytes).
const digests = new WeakMap<RenderedFile, string>();
const INLINE = 4096;

function digestOf(f: RenderedFile): string {
  let d = digests.get(f);
  if (d === undefined) { d = createHash('sha256').update(f.content).digest('hex'); digests.set(f, d); }
  return d;
}

/** sha256 over (path, mode, secret flag, content or, past 4 KiB, its sha256) of every file in order. */
export function machineContentHash(files: readonly RenderedFile[]): string {
  const h = createHash('sha256');
  for (const f of files) {
    const big = f.content.length > INLINE;
    h.update(`${f.path}\0${f.mode.toString(8)}\0${f.secret ? 1 : 0}\0${big ? 'sha256' : f.content.length}\0`).update(big ? digestOf(f) : f.content);
  }
  return h.digest('hex');
}

export function renderBootConfig(kind: 'ipxe' | 'pxelinux' | 'grub', plan: BootTargetPlan, inv: Inventory, ctx: RenderContext, token?: string): string {
  if (kind === 'ipxe') return renderIpxeScript(plan, inv, ctx, token);
  if (kind === 'pxelinux') return renderPxelinuxConfig(plan, inv, ctx, token);
  return renderGrubConfig(plan, inv, ctx, token);
}
