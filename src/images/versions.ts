/**
 * Content-addressed image versions: <dir>/<name>-<sha12>.tar, with <name>.tar a relative symlink to
 * the current one and <name>.previous.tar to the one before, so a bad build is one rollback away
 * (DSAS: "keep the old master"). Symlinks are swapped with rename, so a reader (the HTTP server
 * streaming a rootfs) sees either the old or the new image, never neither.
 *
 * One history per image (<name>.history.json beside the versions) for built and captured versions
 * alike: who, what, when, from which box, on top of which version, and the per-machine pins
 * (`rolecast images try`). Old versions are pruned, but never the current, the previous, a pinned one,
 * or one of the newest KEEP.
 */
import { link, lstat, readdir, readFile, readlink, rename, rm, symlink, open, realpath } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { RolecastError } from '../errors.js';
import { sha256File, writeAtomic } from '../fsutil.js';

export interface ImageVersions {
  current?: string;
  previous?: string;
  all: string[];
}

export interface FileChange {
  path: string;
  change: 'added' | 'changed' | 'deleted' | 'mode' | 'owner';
  detail?: string;
}

export interface VersionRecord {
  /** <name>-<sha12>.tar */
  file: string;
  sha256: string;
  kind: 'built' | 'captured' | 'imported';
  at: string;
  by?: string;
  what?: string;
  /** The box a capture came from. */
  box?: { host: string; mac: string; address: string };
  /** The version a capture was made on top of. */
  parent?: string;
  changes?: FileChange[];
  /** Removed from disk by pruning; the record stays. */
  pruned?: boolean;
}

export interface History {
  versions: VersionRecord[];
  /** host → version file staged for that machine only. */
  pins: Record<string, string>;
  /** promote / rollback / try, newest last. */
  log: { at: string; op: string; file?: string; host?: string; by?: string }[];
}

/** Versions kept besides the current, the previous and pinned ones. */
export const KEEP = 8;

export const versionPattern = (name: string) => new RegExp(`^${name.replace(/[^\w-]/g, '\\$&')}-([0-9a-f]{12})\\.tar$`);
export const versionFile = (name: string, sha256: string) => `${name}-${sha256.slice(0, 12)}.tar`;

async function linkTarget(path: string): Promise<string | undefined> {
  try {
    return basename(await readlink(path));
  } catch {
    return undefined;
  }
}

async function pointAt(dir: string, link: string, target: string): Promise<void> {
  const tmp = join(dir, `.${link}.tmp-${process.pid}`);
  await rm(tmp, { force: true });
  await symlink(target, tmp);
  await rename(tmp, join(dir, link));
}

export async function listVersions(dir: string, name: string): Promise<ImageVersions> {
  const re = versionPattern(name);
  const all = (await readdir(dir).catch(() => [] as string[])).filter((f) => re.test(f)).sort();
  const current = await linkTarget(join(dir, `${name}.tar`));
  const previous = await linkTarget(join(dir, `${name}.previous.tar`));
  return { ...(current ? { current } : {}), ...(previous ? { previous } : {}), all };
}

const historyPath = (dir: string, name: string) => join(dir, `${name}.history.json`);

export async function readHistory(dir: string, name: string): Promise<History> {
  try {
    const h = JSON.parse(await readFile(historyPath(dir, name), 'utf8')) as Partial<History>;
    return { versions: h.versions ?? [], pins: h.pins ?? {}, log: h.log ?? [] };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { versions: [], pins: {}, log: [] };
    throw new RolecastError('E_IMAGE_HISTORY', `${historyPath(dir, name)} is not readable JSON: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Change the history under a lock file, so the CLI and a running server (a capture) never lose each
 * other's writes. A lock older than 30 s is a crashed writer's and is taken over.
 */
export async function withHistory<T>(dir: string, name: string, fn: (h: History) => Promise<T>): Promise<T> {
  const lock = join(dir, `.${name}.history.lock`);
  for (let i = 0; ; i++) {
    try {
      await (await open(lock, 'wx')).close();
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const st = await lstat(lock).catch(() => undefined);
      if (st && Date.now() - st.mtimeMs > 30_000) { await rm(lock, { force: true }); continue; }
      if (i > 200) throw new RolecastError('E_IMAGE_BUSY', `${name}: another image operation holds ${lock}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }
  try {
    const h = await readHistory(dir, name);
    const result = await fn(h);
    await writeAtomic(historyPath(dir, name), `${JSON.stringify(h, null, 2)}\n`);
    return result;
  } finally {
    await rm(lock, { force: true });
  }
}

/** Remove versions nobody needs: not current, previous, pinned, nor among the newest KEEP. */
async function prune(dir: string, name: string, h: History): Promise<void> {
  const v = await listVersions(dir, name);
  const order = h.versions.filter((r) => !r.pruned).map((r) => r.file);
  const keep = new Set([v.current, v.previous, ...Object.values(h.pins), ...order.slice(-KEEP)]);
  for (const f of v.all) {
    // Files without a record (made before histories existed) are kept only as current/previous.
    if (keep.has(f)) continue;
    await rm(join(dir, f), { force: true });
    const rec = h.versions.find((r) => r.file === f);
    if (rec) rec.pruned = true;
  }
}

function record(h: History, rec: VersionRecord): void {
  const old = h.versions.findIndex((r) => r.file === rec.file);
  // The same content again (a rebuild, a capture that changes nothing) keeps its first record.
  if (old >= 0) { if (h.versions[old]!.pruned) delete h.versions[old]!.pruned; return; }
  h.versions.push(rec);
}

/**
 * Make <file> (already in dir, named <name>-<sha12>.tar) current. Rebuilding the same content is a
 * no-op that keeps the previous pointer as it was.
 */
export async function publishVersion(dir: string, name: string, file: string, rec?: Partial<Omit<VersionRecord, 'file'>>): Promise<ImageVersions> {
  return withHistory(dir, name, async (h) => {
    record(h, { kind: 'built', at: new Date().toISOString(), ...rec, file, sha256: rec?.sha256 ?? await sha256File(join(dir, file)) });
    await makeCurrent(dir, name, file);
    h.log.push({ at: new Date().toISOString(), op: rec?.kind === 'captured' ? 'promote' : 'build', file, ...(rec?.by ? { by: rec.by } : {}) });
    await prune(dir, name, h);
    return listVersions(dir, name);
  });
}

async function makeCurrent(dir: string, name: string, file: string): Promise<void> {
  const before = await listVersions(dir, name);
  if (before.current === file) return;
  if (before.current) await pointAt(dir, `${name}.previous.tar`, before.current);
  await pointAt(dir, `${name}.tar`, file);
}

/** Record a version without making it current (a capture: staged until promoted). */
export async function addVersion(dir: string, name: string, rec: VersionRecord): Promise<VersionRecord> {
  return withHistory(dir, name, async (h) => {
    record(h, rec);
    await prune(dir, name, h);
    return h.versions.find((r) => r.file === rec.file)!;
  });
}

/** A version by its file name, its sha12 or a unique prefix of it (at least 4 characters). */
export async function resolveVersion(dir: string, name: string, id: string): Promise<string> {
  const v = await listVersions(dir, name);
  if (v.all.includes(id)) return id;
  const re = versionPattern(name);
  const hits = /^[0-9a-f]{4,64}$/.test(id) ? v.all.filter((f) => re.exec(f)?.[1]?.startsWith(id.slice(0, 12))) : [];
  if (hits.length === 1) return hits[0]!;
  const known = v.all.map((f) => re.exec(f)?.[1]).join(', ') || 'none';
  if (hits.length > 1) throw new RolecastError('E_USAGE', `${name}: version "${id}" is ambiguous (${hits.join(', ')})`);
  throw new RolecastError('E_NOT_FOUND', `${name}: no version "${id}" in ${dir} (versions: ${known})`);
}

/** Make a version the role's current; machines pinned to it follow the role again. */
export async function promoteVersion(dir: string, name: string, id: string, by?: string): Promise<ImageVersions> {
  const file = await resolveVersion(dir, name, id);
  return withHistory(dir, name, async (h) => {
    await makeCurrent(dir, name, file);
    for (const [host, f] of Object.entries(h.pins)) if (f === file) delete h.pins[host];
    h.log.push({ at: new Date().toISOString(), op: 'promote', file, ...(by ? { by } : {}) });
    return listVersions(dir, name);
  });
}

/** Swap current and previous. */
export async function rollbackVersion(dir: string, name: string, by?: string): Promise<ImageVersions> {
  return withHistory(dir, name, async (h) => {
    const v = await listVersions(dir, name);
    if (!v.previous || !v.all.includes(v.previous)) {
      throw new RolecastError('E_NO_PREVIOUS', `no previous version of ${name} in ${dir} to roll back to`);
    }
    await pointAt(dir, `${name}.tar`, v.previous);
    if (v.current) await pointAt(dir, `${name}.previous.tar`, v.current);
    h.log.push({ at: new Date().toISOString(), op: 'rollback', file: v.previous, ...(by ? { by } : {}) });
    return listVersions(dir, name);
  });
}

/** Stage a version for one machine (undefined: that machine follows the role's current again). */
export async function pinVersion(dir: string, name: string, host: string, id: string | undefined, by?: string): Promise<string | undefined> {
  const file = id === undefined ? undefined : await resolveVersion(dir, name, id);
  return withHistory(dir, name, async (h) => {
    if (file) h.pins[host] = file;
    else delete h.pins[host];
    h.log.push({ at: new Date().toISOString(), op: file ? 'try' : 'untry', host, ...(file ? { file } : {}), ...(by ? { by } : {}) });
    return file;
  });
}

/**
 * Make sure <name>.tar is a symlink to a content-addressed version: an image put there by hand (a
 * plain file, or a link to another image) becomes <name>-<sha12>.tar (a hard link, no copy) first.
 */
export async function ensureVersioned(dir: string, name: string): Promise<string> {
  const linkPath = join(dir, `${name}.tar`);
  const st = await lstat(linkPath).catch(() => undefined);
  if (!st) throw new RolecastError('E_NO_IMAGE', `${linkPath} is missing: build the image first (rolecast images build)`);
  const target = st.isSymbolicLink() ? await linkTarget(linkPath) : undefined;
  if (target && versionPattern(name).test(target)) return target;
  const real = await realpath(linkPath);
  const sha256 = await sha256File(real);
  const file = versionFile(name, sha256);
  await link(real, join(dir, file)).catch(async (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EEXIST') throw err;
  });
  await publishVersion(dir, name, file, { kind: 'imported', sha256, what: `${basename(real)} as found` });
  return file;
}
