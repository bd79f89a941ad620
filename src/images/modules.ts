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
}

export function moduleClosure(kernelVersion: string, wanted: string[]): ModuleSet {
  const root = join('/lib/modules', kernelVersion, 'kernel');
  if (!existsSync(root)) throw new RolecastError('E_NO_MODULES', `no modules for kernel ${kernelVersion} in ${root} (install linux-image-amd64)`);
  const index = indexModules(root);
  const aliases = readAliases(kernelVersion);
  const order: string[] = [];
  const seen = new Set<string>();
  const missing: string[] = [];
  const visit = (name: string, stack: string[]) => {
    if (seen.has(name)) return;
    const file = index.get(name);
    if (!file) { if (stack.length === 0) missing.push(name); return; }
    seen.add(name);
    const deps = dependsOf(file);
    for (const d of deps.soft.flatMap((x) => resolveSoft(x, index, aliases))) visit(d, [...stack, name]);
    for (const d of deps.hard) visit(d, [...stack, name]);
    order.push(file);
  };
  for (const w of wanted) visit(w.replace(/-/g, '_'), []);
  return { files: order, missing };
}
