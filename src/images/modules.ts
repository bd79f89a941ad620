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

function dependsOf(file: string): string[] {
  const text = readFileSync(file).toString('latin1');
  const m = /\0depends=([^\0]*)\0/.exec(text) ?? /^depends=([^\0]*)\0/.exec(text);
  return m?.[1] ? m[1].split(',').filter(Boolean).map((d) => d.replace(/-/g, '_')) : [];
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
  const order: string[] = [];
  const seen = new Set<string>();
  const missing: string[] = [];
  const visit = (name: string, stack: string[]) => {
    if (seen.has(name)) return;
    const file = index.get(name);
    if (!file) { if (stack.length === 0) missing.push(name); return; }
    seen.add(name);
    for (const d of dependsOf(file)) visit(d, [...stack, name]);
    order.push(file);
  };
  for (const w of wanted) visit(w.replace(/-/g, '_'), []);
  return { files: order, missing };
}
