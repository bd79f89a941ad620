/** Role defaults merged with machine overrides: what a machine actually boots with. Pure. */
import type { ExtraFile, Inventory, Machine, ResolvedMachine } from './types.js';
import { RolecastError } from '../errors.js';

function mergeFiles(roleFiles: readonly ExtraFile[], machineFiles: readonly ExtraFile[]): ExtraFile[] {
  const byPath = new Map<string, ExtraFile>();
  for (const f of roleFiles) byPath.set(f.path, f);
  for (const f of machineFiles) byPath.set(f.path, f); // the machine wins
  return [...byPath.values()].sort((a, b) => a.path.localeCompare(b.path));
}

export function resolveMachine(inv: Inventory, m: Machine): ResolvedMachine {
  const name = m.bootOnce ?? m.role;
  const role = inv.roles[name];
  // A validated snapshot never holds an unknown role; reaching this means the caller mixed snapshots.
  if (!role) throw new RolecastError('E_UNKNOWN_ROLE', `${m.host}: role "${name}" is not in this inventory snapshot`);
  const cmdline = [role.cmdline, m.cmdline].filter((s) => s && s.trim()).join(' ');
  return Object.freeze({
    machine: m,
    role,
    homeRole: m.role,
    cmdline,
    boot: m.boot ?? role.boot ?? inv.site.boot,
    // A machine's own site list replaces the role's default (it is the machine's line in the MATRIX).
    sites: Object.freeze([...(m.sites ?? role.sites)]) as string[],
    files: Object.freeze(mergeFiles(role.files, m.files)) as ExtraFile[],
  });
}
