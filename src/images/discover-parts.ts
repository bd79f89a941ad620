/**
 * What the commissioning action (rolecast.action=discover) adds to the common initramfs: its script,
 * the static `rolecast-hw` helper (LLDP and IPMI, the two facts busybox cannot read; see its source
 * for why it is not lldpd or ipmitool) compiled here with gcc -static, and the IPMI drivers, loaded
 * only by that action so a normal boot never probes for a BMC.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import type { CpioEntry } from './cpio.js';
import { moduleClosure } from './modules.js';

export const IPMI_MODULES = ['ipmi_devintf', 'ipmi_si'];

export interface DiscoverParts { entries: CpioEntry[]; warnings: string[] }

const built = new Map<string, Buffer>();

/**
 * gcc -static one of the helpers (images/initramfs/<name>.c), once per source text in a process;
 * undefined (and why) when no compiler or static libc is installed.
 */
export function compileHelper(srcDir: string, name = 'rolecast-hw'): { binary?: Buffer; warning?: string } {
  const source = readFileSync(join(srcDir, `${name}.c`), 'utf8');
  const cached = built.get(source);
  if (cached) return { binary: cached };
  const dir = mkdtempSync(join(tmpdir(), `${name}-`));
  try {
    const out = join(dir, name);
    const r = spawnSync('gcc', ['-static', '-Os', '-s', '-o', out, join(srcDir, `${name}.c`)], { encoding: 'utf8' });
    if (r.status !== 0) return { warning: `${name} not built (gcc -static: ${r.error?.message ?? r.stderr.trim().split('\n').pop()})` };
    const binary = readFileSync(out);
    built.set(source, binary);
    return { binary };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The discover action's files; `common` are the modules already in the image (not copied twice). */
export function discoverParts(srcDir: string, kernelVersion: string, common: readonly string[]): DiscoverParts {
  const entries: CpioEntry[] = [{ type: 'file', path: 'lib/rolecast/discover.sh', mode: 0o644, data: readFileSync(join(srcDir, 'discover.sh')) }];
  const warnings: string[] = [];
  const helper = compileHelper(srcDir);
  if (helper.binary) entries.push({ type: 'file', path: 'bin/rolecast-hw', mode: 0o755, data: helper.binary });
  else warnings.push(`${helper.warning!}: discovery reports carry no LLDP neighbour or BMC address`);
  const have = new Set(common);
  const ipmi = moduleClosure(kernelVersion, IPMI_MODULES).files.filter((f) => !have.has(f));
  const names = ipmi.map((f, i) => `${String(i).padStart(3, '0')}-${basename(f)}`);
  entries.push({ type: 'dir', path: 'lib/rolecast-modules/discover' });
  ipmi.forEach((f, i) => entries.push({ type: 'file', path: `lib/rolecast-modules/discover/${names[i]}`, mode: 0o644, data: readFileSync(f) }));
  entries.push({ type: 'file', path: 'lib/rolecast-modules/discover/order', mode: 0o644, data: Buffer.from(names.map((n) => `${n}\n`).join('')) });
  return { entries, warnings };
}
