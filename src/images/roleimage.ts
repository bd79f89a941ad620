/**
 * A role's base image as a version history: where its versions live (the directory of the image's
 * path, e.g. images/build/rootfs for build/rootfs/test.tar), and the operations the CLI and the API
 * share — list, diff, promote, roll back, try on one machine. One history for built and captured
 * versions (versions.ts).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, isAbsolute, join } from 'node:path';
import { createReadStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import * as tar from 'tar-stream';
import { RolecastError } from '../errors.js';
import type { Inventory } from '../inventory/types.js';
import { normName } from '../rootfs/tarindex.js';
import { manifestOf, type ManifestEntry } from './manifest.js';
import { listVersions, readHistory, resolveVersion, versionPattern, type FileChange, type History, type VersionRecord } from './versions.js';

export interface RoleImage {
  role: string;
  /** The inventory's image name (e.g. test-root). */
  image: string;
  /** Version directory and file stem: <dir>/<name>.tar is the current version. */
  dir: string;
  name: string;
}

export function roleImage(inv: Inventory, imagesDir: string, role: string): RoleImage {
  const r = inv.roles[role];
  if (!r) throw new RolecastError('E_NOT_FOUND', `no role "${role}" (roles: ${Object.keys(inv.roles).sort().join(', ')})`);
  const img = r.rootfs ? inv.images[r.rootfs] : undefined;
  if (!img) throw new RolecastError('E_NO_ROOTFS', `role "${role}" has no rootfs image: nothing to version`);
  if (!img.path.endsWith('.tar')) throw new RolecastError('E_NO_ROOTFS', `role "${role}": image ${img.name} (${img.path}) is not a .tar; versions need <name>.tar`);
  const path = isAbsolute(img.path) ? img.path : join(imagesDir, img.path);
  return { role, image: img.name, dir: dirname(path), name: basename(path, '.tar') };
}

export interface VersionRow extends Partial<VersionRecord> {
  file: string;
  version: string;
  current: boolean;
  previous: boolean;
  /** Hosts this version is staged on (images try). */
  pinnedOn: string[];
}

export interface VersionsReport {
  role: string;
  image: string;
  dir: string;
  current?: string;
  previous?: string;
  pins: Record<string, string>;
  versions: VersionRow[];
  history: History['log'];
}

/** Every version on disk or in the history, oldest first (history order, then unrecorded files). */
export async function versionsReport(ri: RoleImage): Promise<VersionsReport> {
  const [v, h] = await Promise.all([listVersions(ri.dir, ri.name), readHistory(ri.dir, ri.name)]);
  const re = versionPattern(ri.name);
  const files = [...h.versions.map((r) => r.file), ...v.all.filter((f) => !h.versions.some((r) => r.file === f))];
  const versions = files.map((file): VersionRow => ({
    ...h.versions.find((r) => r.file === file),
    file,
    version: re.exec(file)?.[1] ?? file,
    current: file === v.current,
    previous: file === v.previous,
    pinnedOn: Object.entries(h.pins).filter(([, f]) => f === file).map(([host]) => host).sort(),
    ...(v.all.includes(file) ? {} : { pruned: true }),
  }));
  return { role: ri.role, image: ri.image, dir: ri.dir, ...(v.current ? { current: v.current } : {}), ...(v.previous ? { previous: v.previous } : {}), pins: h.pins, versions, history: h.log };
}

/** Read these paths' contents from a tar (for the unified diff of changed text files). */
async function contents(file: string, paths: ReadonlySet<string>): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  const ex = tar.extract();
  ex.on('entry', (h, body, next) => {
    const p = normName(h.name);
    const chunks: Buffer[] = [];
    body.on('data', (c: unknown) => { if (paths.has(p)) chunks.push(c as Buffer); });
    body.on('end', () => { if (paths.has(p) && h.type === 'file') out.set(p, Buffer.concat(chunks)); next(); });
    body.resume();
  });
  await pipeline(createReadStream(file), ex);
  return out;
}

export function compareManifests(a: Map<string, ManifestEntry>, b: Map<string, ManifestEntry>): FileChange[] {
  const out: FileChange[] = [];
  for (const p of [...new Set([...a.keys(), ...b.keys()])].sort()) {
    const x = a.get(p);
    const y = b.get(p);
    if (!x) out.push({ path: `/${p}`, change: 'added' });
    else if (!y) out.push({ path: `/${p}`, change: 'deleted' });
    else if (x.type !== y.type || x.sha256 !== y.sha256 || x.target !== y.target) out.push({ path: `/${p}`, change: 'changed' });
    else if (x.mode !== y.mode) out.push({ path: `/${p}`, change: 'mode', detail: `${x.mode.toString(8)} -> ${y.mode.toString(8)}` });
    else if (x.uid !== y.uid || x.gid !== y.gid) out.push({ path: `/${p}`, change: 'owner', detail: `${x.uid}:${x.gid} -> ${y.uid}:${y.gid}` });
  }
  return out;
}

const isText = (b: Buffer) => b.length <= 1024 * 1024 && !b.subarray(0, 8192).includes(0);

/** `diff -u` (diffutils) of two texts, labelled a/<path> and b/<path>. */
async function unified(path: string, a: Buffer, b: Buffer): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'rolecast-diff-'));
  try {
    await writeFile(join(dir, 'a'), a);
    await writeFile(join(dir, 'b'), b);
    return await new Promise<string>((resolve, reject) => {
      const p = spawn('diff', ['-u', '--label', `a${path}`, '--label', `b${path}`, join(dir, 'a'), join(dir, 'b')], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      p.stdout.on('data', (d: Buffer) => { out += d.toString(); });
      p.stderr.on('data', (d: Buffer) => { err += d.toString(); });
      p.on('error', (e) => reject(new RolecastError('E_NO_DIFF', 'cannot run diff (apt-get install diffutils)', { cause: e })));
      p.on('close', (code) => (code === 0 || code === 1 ? resolve(out) : reject(new RolecastError('E_NO_DIFF', `diff failed: ${err}`))));
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export interface VersionDiff {
  from: string;
  to: string;
  files: FileChange[];
  /** Unified diff of the changed or added/deleted text files. */
  diff: string;
}

/**
 * Diff two versions: `from` → `to`. With none named: the current against the newest other version
 * (typically the capture waiting to be tried); with one: the current against it.
 */
export async function diffVersions(ri: RoleImage, fromId?: string, toId?: string): Promise<VersionDiff> {
  const rep = await versionsReport(ri);
  const live = rep.versions.filter((v) => !v.pruned);
  // One version named: the current against it. Two: the first against the second.
  const [f, t] = toId ? [fromId, toId] : [undefined, fromId];
  const from = f ? await resolveVersion(ri.dir, ri.name, f) : rep.current;
  const to = t ? await resolveVersion(ri.dir, ri.name, t) : live.filter((v) => !v.current).at(-1)?.file;
  if (!from || !to) throw new RolecastError('E_NOT_FOUND', `${ri.role}: need two versions to diff (have ${live.map((v) => v.version).join(', ') || 'none'})`);
  const [a, b] = await Promise.all([manifestOf(join(ri.dir, from)), manifestOf(join(ri.dir, to))]);
  const files = compareManifests(a, b);
  const textual = new Set(files.filter((f) => f.change !== 'mode' && f.change !== 'owner').map((f) => f.path.slice(1)));
  const [ca, cb] = await Promise.all([contents(join(ri.dir, from), textual), contents(join(ri.dir, to), textual)]);
  let diff = '';
  for (const f of files) {
    const p = f.path.slice(1);
    if (!textual.has(p)) continue;
    const x = ca.get(p) ?? Buffer.alloc(0);
    const y = cb.get(p) ?? Buffer.alloc(0);
    if (!ca.has(p) && !cb.has(p)) continue; // directories, symlinks
    diff += isText(x) && isText(y) ? await unified(f.path, x, y) : `Binary files a${f.path} and b${f.path} differ\n`;
  }
  return { from, to, files, diff };
}
