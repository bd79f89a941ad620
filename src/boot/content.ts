/**
 * What a machine's rootfs and /files answer, decided from its plan (pure): the base image of the role
 * that boots now and the files rendered for it. An unknown MAC booting under the unknown-machine policy
 * gets the policy target's base and only its identity files (no inventory data, no secrets). Whoever
 * may receive the secret files is part of the answer, so no route looks a machine up on its own.
 */
import type { Image, Inventory } from '../inventory/types.js';
import type { RenderContext, RenderedFile } from '../render/types.js';
import { machineContentHash, renderMachineFiles, renderUnknownFiles } from '../render/index.js';
import type { BootTargetPlan } from './plan.js';
import { createHash } from 'node:crypto';
import { versionPath } from '../images/view.js';

/** The image at the version the plan chose (the file beside the image's own path). */
const baseOf = (img: Image, version: string | undefined): Image => (version ? { ...img, path: versionPath(img.path, version) } : img);

export interface MachineContent {
  mac: string;
  host?: string;
  role: string;
  /** The base image the rootfs starts from, when the role has one. */
  base?: Image;
  files: RenderedFile[];
  /** Content hash of the files (rootfs ETag part, `rolecast diff`). */
  hash: string;
  /** True when any file is secret: then only `ownerAddress` (or the MAC's live lease) may fetch. */
  secret: boolean;
  /** The machine's reserved address. */
  ownerAddress?: string;
}

const cache = new WeakMap<Inventory, Map<string, MachineContent>>();
const hashes = new WeakMap<Inventory, Map<string, string>>();

const keyOf = (plan: BootTargetPlan, ctx: RenderContext) => `${ctx.baseUrl}\0${ctx.server}\0${plan.mac}\0${plan.role.name}\0${plan.rootfs ?? ''}\0${plan.rootfsVersion ?? ''}`;

/**
 * What identifies the content: the files' hash, and the base version when the plan names one, so a
 * promote, rollback or try shows up as "changes on the next boot" like an edit of the profiles does.
 */
function identity(plan: BootTargetPlan, filesHash: string): string {
  return plan.rootfsVersion ? createHash('sha256').update(`${filesHash}\0${plan.rootfsVersion}`).digest('hex') : filesHash;
}

/**
 * Just the content hash (fleet views over every machine): kept per snapshot without the files
 * themselves, so listing 10,000 machines does not hold 10,000 rendered file sets.
 */
export function machineContentHashOf(plan: BootTargetPlan, inv: Inventory, ctx: RenderContext): string {
  const key = keyOf(plan, ctx);
  const full = cache.get(inv)?.get(key);
  if (full) return full.hash;
  let perInv = hashes.get(inv);
  if (!perInv) { perInv = new Map(); hashes.set(inv, perInv); }
  let h = perInv.get(key);
  if (h === undefined) {
    h = identity(plan, machineContentHash(plan.resolved ? renderMachineFiles(plan.resolved, inv, ctx) : renderUnknownFiles(plan.mac, plan.role, inv, ctx)));
    perInv.set(key, h);
  }
  return h;
}

export function machineContent(plan: BootTargetPlan, inv: Inventory, ctx: RenderContext): MachineContent {
  let perInv = cache.get(inv);
  if (!perInv) { perInv = new Map(); cache.set(inv, perInv); }
  const key = keyOf(plan, ctx);
  const hit = perInv.get(key);
  if (hit) return hit;
  const files = plan.resolved ? renderMachineFiles(plan.resolved, inv, ctx) : renderUnknownFiles(plan.mac, plan.role, inv, ctx);
  const c: MachineContent = {
    mac: plan.mac, role: plan.role.name, files, hash: identity(plan, machineContentHash(files)), secret: files.some((f) => f.secret),
    ...(plan.host ? { host: plan.host } : {}),
    ...(plan.rootfs && inv.images[plan.rootfs] ? { base: baseOf(inv.images[plan.rootfs]!, plan.rootfsVersion) } : {}),
    ...(plan.machine ? { ownerAddress: plan.machine.ip } : {}),
  };
  perInv.set(key, c);
  return c;
}
