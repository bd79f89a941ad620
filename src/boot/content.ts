/**
 * What a machine's rootfs and /files answer, decided from its plan (pure): the base image of the role
 * that boots now and the files rendered for it. An unknown MAC booting under the unknown-machine policy
 * gets the policy target's base and only its identity files (no inventory data, no secrets). Whoever
 * may receive the secret files is part of the answer, so no route looks a machine up on its own.
 */
import type { Image, Inventory, Machine } from '../inventory/types.js';
import type { RenderContext, RenderedFile } from '../render/types.js';
import { machineContentHash, renderMachineFiles, renderUnknownFiles } from '../render/index.js';
import type { BootTargetPlan } from './plan.js';
import { createHash } from 'node:crypto';
import { versionPath } from '../images/view.js';
import { resolveMachine } from '../inventory/resolve.js';

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

// The server key changes the files (a rootfs role's capture credential): a key's short fingerprint is
// part of every cache key, so hashes made without it (or with another) are never taken for these.
const fingerprints = new WeakMap<Buffer, string>();
function fingerprint(key: Buffer | undefined): string {
  if (!key) return '-';
  let f = fingerprints.get(key);
  if (f === undefined) { f = createHash('sha256').update('rolecast render key\0').update(key).digest('hex').slice(0, 16); fingerprints.set(key, f); }
  return f;
}

/** What of a render context the files depend on: the URL base, the server address, the server key. */
export function renderKeyOf(ctx: RenderContext): string {
  return `${ctx.baseUrl}\0${ctx.server}\0${fingerprint(ctx.serverKey)}`;
}

const keyOf = (plan: BootTargetPlan, ctx: RenderContext) => `${renderKeyOf(ctx)}\0${plan.mac}\0${plan.role.name}\0${plan.rootfs ?? ''}\0${plan.rootfsVersion ?? ''}`;

/**
 * The hash of the files a known machine gets (before the base version is mixed in): a function of the
 * snapshot, the machine and the render context only — so the profile loader thread can work it out for
 * every machine of a new snapshot (src/inventory/load-worker.ts) and the main thread only looks it up.
 * Null when its files cannot be rendered (the request that needs them gets that error itself).
 */
export function filesHashOf(inv: Inventory, ctx: RenderContext, m: Machine): string | null {
  try {
    return machineContentHash(renderMachineFiles(resolveMachine(inv, m), inv, ctx));
  } catch {
    return null;
  }
}

// Files hashes handed over with a snapshot (per render context), by machine.
const seeded = new WeakMap<Inventory, Map<string, ReadonlyMap<Machine, string>>>();

/**
 * Takes the files hashes worked out elsewhere for this snapshot and render context (`hashes[i]` is
 * inv.machines[i]'s, as filesHashOf gives it; null entries are rendered here when asked for).
 */
export function seedFilesHashes(inv: Inventory, ctx: RenderContext, hashes: readonly (string | null)[]): void {
  if (hashes.length !== inv.machines.length) throw new Error(`seedFilesHashes: ${hashes.length} hashes for ${inv.machines.length} machines`);
  const byMachine = new Map<Machine, string>();
  inv.machines.forEach((m, i) => { const h = hashes[i]; if (h) byMachine.set(m, h); });
  let perInv = seeded.get(inv);
  if (!perInv) { perInv = new Map(); seeded.set(inv, perInv); }
  perInv.set(renderKeyOf(ctx), byMachine);
}

/** True when this snapshot's files hashes for this render context were handed over (seedFilesHashes). */
export function hasSeededHashes(inv: Inventory, ctx: RenderContext): boolean {
  return seeded.get(inv)?.has(renderKeyOf(ctx)) ?? false;
}

function seededHash(plan: BootTargetPlan, inv: Inventory, ctx: RenderContext): string | undefined {
  // Only for the machine's own resolution (the one filesHashOf rendered): planBoot always resolves a
  // known machine through resolveMachine, so this holds; checked rather than assumed.
  if (!plan.machine || !plan.resolved || plan.resolved !== resolveMachine(inv, plan.machine)) return undefined;
  return seeded.get(inv)?.get(renderKeyOf(ctx))?.get(plan.machine);
}

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
    const files = seededHash(plan, inv, ctx) ?? machineContentHash(plan.resolved ? renderMachineFiles(plan.resolved, inv, ctx) : renderUnknownFiles(plan.mac, plan.role, inv, ctx));
    h = identity(plan, files);
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
