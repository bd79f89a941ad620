/** Role defaults merged with machine overrides: what a machine actually boots with. Pure. */
import type { BootMethod, ExtraFile, Inventory, Machine, ResolvedMachine, Role } from './types.js';
import { RolecastError } from '../errors.js';

function mergeFiles(roleFiles: readonly ExtraFile[], machineFiles: readonly ExtraFile[]): ExtraFile[] {
  const byPath = new Map<string, ExtraFile>();
  for (const f of roleFiles) byPath.set(f.path, f);
  for (const f of machineFiles) byPath.set(f.path, f); // the machine wins
  return [...byPath.values()].sort((a, b) => a.path.localeCompare(b.path));
}

/** The role's command line, then the machine's: the one place they are merged. */
export function mergedCmdline(role: Role, m?: Machine): string {
  return [role.cmdline, m?.cmdline].filter((s): s is string => !!s && s.trim() !== '').join(' ');
}

/** Which role a machine boots now: its boot-once target while one is set, else its own role. */
export function effectiveRoleName(m: Machine): string {
  return m.bootOnce ?? m.role;
}

/** The boot method: machine, then role, then site. */
export function bootMethodOf(inv: Inventory, role: Role, m?: Machine): BootMethod {
  return m?.boot ?? role.boot ?? inv.site.boot;
}

/**
 * Role defaults merged with machine overrides. Cached per snapshot: a snapshot is immutable, so the
 * answer for a machine cannot change under it, and DHCP, TFTP and HTTP ask many times per boot.
 */
const cache = new WeakMap<Inventory, Map<Machine, ResolvedMachine>>();

export function resolveMachine(inv: Inventory, m: Machine): ResolvedMachine {
  let perInv = cache.get(inv);
  if (!perInv) { perInv = new Map(); cache.set(inv, perInv); }
  let rm = perInv.get(m);
  if (!rm) { rm = resolveUncached(inv, m); perInv.set(m, rm); }
  return rm;
}

function resolveUncached(inv: Inventory, m: Machine): ResolvedMachine {
  const name = effectiveRoleName(m);
  const role = inv.roles[name];
  // A validated snapshot never holds an unknown role; reaching this means the caller mixed snapshots.
  if (!role) throw new RolecastError('E_UNKNOWN_ROLE', `${m.host}: role "${name}" is not in this inventory snapshot`);
  const cmdline = mergedCmdline(role, m);
  return Object.freeze({
    machine: m,
    role,
    homeRole: m.role,
    cmdline,
    boot: bootMethodOf(inv, role, m),
    // A machine's own site list replaces the role's default (it is the machine's line in the MATRIX).
    sites: Object.freeze([...(m.sites ?? role.sites)]) as string[],
    files: Object.freeze(mergeFiles(role.files, m.files)) as ExtraFile[],
  });
}
