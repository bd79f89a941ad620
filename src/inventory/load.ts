/**
 * Load the profiles directory: read every file, parse as YAML 1.2 (a MAC such as 52:54:00:00:01:01 must
 * stay a string — YAML 1.1 reads some as base-60 numbers), check structure and cross-file rules, and
 * either return the parts or throw a ProfileError with every issue, sorted by file and position.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { basename, join, relative } from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import { ProfileError, RolecastError, type ProfileIssue } from '../errors.js';
import { Reader, val } from './read.js';
import { parseImages, parseNetworks, parseSite, parseSites, type Locs } from './parse.js';
import { parseRole } from './parse-role.js';
import { parseDiscovery } from './parse-discovery.js';
import { directMachines, parseMachines, parseSecrets } from './parse-machines.js';
import { validate, type Parsed } from './validate.js';
import { fastMachines, plainMachines, type PlainMachines } from './fast-machines.js';
import type { Role } from './types.js';

export const SITE_FILE = 'rolecast.yaml';
export const MACHINES_FILE = 'machines.yaml';
export const SECRETS_FILE = 'secrets.yaml';
export const ROLES_DIR = 'roles';

export interface SourceFile { name: string; text: string }

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new RolecastError('E_PROFILE_IO', `cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
}

/** Every source file of a profiles directory, by name relative to it; missing required files are issues. */
export async function readSources(dir: string): Promise<SourceFile[]> {
  const out: SourceFile[] = [];
  for (const name of [SITE_FILE, MACHINES_FILE, SECRETS_FILE]) {
    const text = await readOptional(join(dir, name));
    if (text !== undefined) out.push({ name, text });
  }
  let roleFiles: string[] = [];
  try {
    roleFiles = (await readdir(join(dir, ROLES_DIR))).filter((f) => /\.ya?ml$/.test(f)).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  for (const f of roleFiles) out.push({ name: relative(dir, join(dir, ROLES_DIR, f)), text: await readFile(join(dir, ROLES_DIR, f), 'utf8') });
  return out;
}

export interface ParseOptions {
  /** Read machines.yaml through the one-line-per-machine fast path when it fits (default true). */
  fastMachines?: boolean;
  /**
   * Within the fast path, read machines straight from plain values rather than YAML nodes (default true;
   * off without fastMachines). Any issue in the profiles then has them read again without it, for
   * messages with every position (the direct reading records none).
   */
  directMachines?: boolean;
}

function parseYaml(src: SourceFile, issues: ProfileIssue[], opts: ParseOptions): { r: Reader; root: unknown; plain?: PlainMachines } | undefined {
  if (src.name === MACHINES_FILE && opts.fastMachines !== false && opts.directMachines !== false) {
    const plain = plainMachines(src.text);
    if (plain) return { r: new Reader(src.name, plain.lc, issues), root: undefined, plain };
  }
  if (src.name === MACHINES_FILE && opts.fastMachines !== false) {
    const fast = fastMachines(src.text);
    if (fast) return { r: new Reader(src.name, fast.lc, issues), root: fast.root };
  }
  const lc = new LineCounter();
  const doc = parseDocument(src.text, { lineCounter: lc, version: '1.2', schema: 'core', uniqueKeys: false, prettyErrors: false });
  const r = new Reader(src.name, lc, issues);
  if (doc.errors.length) {
    for (const e of doc.errors) {
      const pos = lc.linePos(e.pos[0]);
      issues.push({ file: src.name, line: pos.line, col: pos.col, path: '(yaml)', message: e.message.split('\n')[0] ?? e.message });
    }
    return undefined;
  }
  return { r, root: doc.contents };
}

function sortIssues(issues: ProfileIssue[]): ProfileIssue[] {
  return [...issues].sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line || a.col - b.col || a.path.localeCompare(b.path));
}

/** Parse and validate sources (no I/O): the same function checks an edit before it is written. */
export function parseSources(sources: SourceFile[], opts: ParseOptions = {}): Parsed {
  const issues: ProfileIssue[] = [];
  const locs: Locs = new Map();
  const byName = new Map(sources.map((s) => [s.name, s]));
  const p: Parsed = {
    site: { domain: 'local', server: '0.0.0.0', httpPort: 8080, boot: 'ipxe', loaders: {}, unknown: { policy: 'ignore' } },
    siteFile: SITE_FILE, networks: [], images: {}, sites: {}, roles: {}, machines: [], machinesFile: MACHINES_FILE, secrets: {}, discovery: { rules: [] }, locs,
  };
  for (const required of [SITE_FILE, MACHINES_FILE]) {
    if (!byName.has(required)) issues.push({ file: required, line: 1, col: 1, path: '(file)', message: `missing: the profiles need ${required}` });
  }
  let direct = false;
  for (const src of sources) {
    const y = parseYaml(src, issues, opts);
    if (!y) continue;
    const { r, root, plain } = y;
    if (src.name === SITE_FILE) {
      const m = r.map(root, '', ['site', 'networks', 'images', 'sites', 'discovery']);
      p.site = parseSite(r, val(m, 'site'));
      p.networks = parseNetworks(r, val(m, 'networks'), locs);
      p.images = val(m, 'images') === undefined ? {} : parseImages(r, val(m, 'images'));
      p.sites = val(m, 'sites') === undefined ? {} : parseSites(r, val(m, 'sites'), locs);
      if (val(m, 'discovery') !== undefined) p.discovery = parseDiscovery(r, val(m, 'discovery'), locs);
    } else if (src.name === MACHINES_FILE) {
      if (plain) direct = true;
      p.machines = plain ? directMachines(r, plain, locs) : parseMachines(r, root, locs);
    } else if (src.name === SECRETS_FILE) {
      p.secrets = parseSecrets(r, root);
    } else {
      addRole(p, parseRole(r, root, locs), src.name, issues);
    }
  }
  // Cross-file rules run even after structural errors (on what did parse), so one run reports everything.
  validate(p, issues);
  // The direct reading kept no positions: the messages come from a reading that has them all.
  if (issues.length && direct) return parseSources(sources, { ...opts, directMachines: false });
  if (issues.length) throw new ProfileError(sortIssues(issues));
  return p;
}

function addRole(p: Parsed, role: Role | undefined, file: string, issues: ProfileIssue[]): void {
  if (!role) return;
  const expected = basename(file).replace(/\.ya?ml$/, '');
  if (role.name !== expected) {
    const loc = p.locs.get(`${file}#name`) ?? { line: 1, col: 1 };
    issues.push({ file, line: loc.line, col: loc.col, path: 'name', message: `role "${role.name}" must live in roles/${role.name}.yaml (file name and role name differ)` });
    return;
  }
  p.roles[role.name] = role;
}

export function versionOf(sources: SourceFile[]): string {
  const h = createHash('sha256');
  for (const s of [...sources].sort((a, b) => a.name.localeCompare(b.name))) h.update(`${s.name}\0${s.text}\0`);
  return h.digest('hex');
}
