/**
 * Kernel modules for an initramfs: the closure of a wanted set under each module's `depends=`
 * (read from the .ko's .modinfo strings, as modinfo does), in load order (dependencies first).
 */
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { RolecastError } from '../errors.js';

export function kernelVersions(): string[] {
  return existsSync('/lib/modules') ? readdirSync('/lib/modules').filter((v) => existsSync(join('/boot', `vmlinuz-${v}`))).sort() : [];
}

function indexModules(dir: string, out = new Map<string, string>()): Map<string, string> {
  // Sorted, so a module name found twice resolves the same way on every build.
  for (const ent of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    const p = join(dir, ent.name);
    if (ent.isDirectory()) indexModules(p, out);
    else if (ent.name.endsWith('.ko')) out.set(ent.name.slice(0, -3).replace(/-/g, '_'), p);
  }
  return out;
}

function modinfoField(text: string, field: string): string | undefined {
  return (new RegExp(`\\0${field}=([^\\0]*)\\0`).exec(text) ?? new RegExp(`^${field}=([^\\0]*)\\0`).exec(text))?.[1];
}

/**
 * Hard dependencies (depends=) and "softdep=pre:" names. Without modprobe nobody loads soft
 * dependencies on demand: libcrc32c (bnx2x) fails to insert unless a crc32c provider is already in.
 */
function dependsOf(file: string): { hard: string[]; soft: string[] } {
  const text = readFileSync(file).toString('latin1');
  const norm = (d: string) => d.replace(/-/g, '_');
  const hard = (modinfoField(text, 'depends') ?? '').split(',').filter(Boolean).map(norm);
  const pre = /pre:\s*([^:]*?)(?:\s+post:|$)/.exec(modinfoField(text, 'softdep') ?? '')?.[1] ?? '';
  return { hard, soft: pre.split(/\s+/).filter(Boolean) };
}

/** modules.alias: alias → module names. */
function readAliases(kernelVersion: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const file = join('/lib/modules', kernelVersion, 'modules.alias');
  if (!existsSync(file)) return out;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const [kw, alias, mod] = line.split(' ');
    if (kw !== 'alias' || !alias || !mod) continue;
    out.set(alias, [...(out.get(alias) ?? []), mod.replace(/-/g, '_')]);
  }
  return out;
}

/** A soft dependency names a module or an alias; of several providers prefer the generic one (any CPU). */
function resolveSoft(name: string, index: Map<string, string>, aliases: Map<string, string[]>): string[] {
  const n = name.replace(/-/g, '_');
  if (index.has(n)) return [n];
  const providers = (aliases.get(name) ?? []).filter((p) => index.has(p)).sort();
  const generic = providers.filter((p) => p.endsWith('_generic'));
  return generic.length ? generic : providers;
}

export interface ModuleSet {
  /** Absolute .ko paths in load order. */
  files: string[];
  /** Wanted modules this kernel does not have (e.g. a NIC driver built in, or absent). */
  missing: string[];
  /** Per .ko path: the .ko paths it needs first (hard and soft dependencies, transitively), in load order. */
  needs: Map<string, string[]>;
}

export function moduleClosure(kernelVersion: string, wanted: string[]): ModuleSet {
  const root = join('/lib/modules', kernelVersion, 'kernel');
  if (!existsSync(root)) throw new RolecastError('E_NO_MODULES', `no modules for kernel ${kernelVersion} in ${root} (install linux-image-amd64)`);
  const index = indexModules(root);
  const aliases = readAliases(kernelVersion);
  const order: string[] = [];
  const seen = new Set<string>();
  const missing: string[] = [];
  const direct = new Map<string, string[]>();
  const visit = (name: string, stack: string[]) => {
    if (seen.has(name)) return;
    const file = index.get(name);
    if (!file) { if (stack.length === 0) missing.push(name); return; }
    seen.add(name);
    const deps = dependsOf(file);
    const names = [...deps.soft.flatMap((x) => resolveSoft(x, index, aliases)), ...deps.hard];
    for (const d of names) visit(d, [...stack, name]);
    direct.set(file, names.map((d) => index.get(d)).filter((f): f is string => f !== undefined));
    order.push(file);
  };
  for (const w of wanted) visit(w.replace(/-/g, '_'), []);
  return { files: order, missing, needs: transitiveNeeds(order, direct) };
}

/** Each module's dependencies, transitively, in the closure's load order (what modules.dep lists). */
function transitiveNeeds(order: string[], direct: Map<string, string[]>): Map<string, string[]> {
  const pos = new Map(order.map((f, i) => [f, i]));
  const all = new Map<string, Set<string>>();
  for (const f of order) {
    // Load order puts every dependency before its user, so theirs are complete already.
    const acc = new Set<string>();
    for (const d of direct.get(f) ?? []) {
      acc.add(d);
      for (const dd of all.get(d) ?? []) acc.add(dd);
    }
    all.set(f, acc);
  }
  return new Map(order.map((f) => [f, [...all.get(f)!].sort((a, b) => pos.get(a)! - pos.get(b)!)]));
}

/**
 * The `alias <pattern> <module>` lines of modules.alias whose module is one of `names`: what busybox
 * modprobe matches a device's modalias against (fnmatch, as kmod does), so the initramfs can load the
 * drivers its hardware needs instead of all of them.
 */
export function aliasLines(kernelVersion: string, names: ReadonlySet<string>): string[] {
  const file = join('/lib/modules', kernelVersion, 'modules.alias');
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8').split('\n').filter((line) => {
    const [kw, alias, mod] = line.split(' ');
    return kw === 'alias' && alias !== undefined && mod !== undefined && names.has(mod.replace(/-/g, '_'));
  });
}
