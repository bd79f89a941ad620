/**
 * A capture becomes a new version of the role's base image: the version the box booted, with the
 * files it sent replacing (or adding to) that version's members and its deletions left out; content-
 * addressed like a built version and recorded in the image's history (who, what, when, which box),
 * not current until promoted. The base's members are copied byte for byte (as the rootfs splice does);
 * only the captured entries are written anew, with mtime 0 so the same capture gives the same version.
 *
 * Never captured: files rolecast renders per machine (they come back at every boot from the profiles),
 * secrets (a base image is readable by anyone on the provisioning network), rolecast's own additions,
 * runtime filesystems. A capture touching one is refused for that path, and nothing is made.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import * as tar from 'tar-stream';
import { sha256File } from '../fsutil.js';
import { segmentStream, type Segment } from '../rootfs/compose.js';
import { tarIndexOf } from '../rootfs/tarindex.js';
import { CaptureError, type CaptureRequest, type Refusal, type UploadEntry } from './capture-upload.js';
import { isExcluded, manifestOf, type Manifest } from './manifest.js';
import { addVersion, ensureVersioned, resolveVersion, versionFile, type FileChange, type VersionRecord } from './versions.js';

/** Paths rolecast adds to every rootfs (the tool, the manifest, the credential). */
export const ROLECAST_PATHS = ['etc/rolecast/manifest', 'usr/sbin/rolecast-capture', 'etc/rolecast/capture.key'];

/** Secrets by their usual place, whatever the profiles say: password hashes and private keys. */
const SECRET_PATTERNS = [/^etc\/g?shadow-?$/, /^etc\/ssh\/ssh_host_[^/]*_key$/, /^root\/\.ssh(\/|$)/, /^etc\/ssl\/private(\/|$)/, /^etc\/rolecast\/capture\.key$/];

export interface CaptureRules {
  /** The machine's rendered files (path → secret?), from renderMachineFiles. */
  rendered: ReadonlyMap<string, { secret: boolean }>;
}

export function refusalFor(path: string, rules: CaptureRules): string | undefined {
  const r = rules.rendered.get(path);
  if (r?.secret || SECRET_PATTERNS.some((re) => re.test(path))) {
    return 'a secret: secrets are never captured (a base image is readable by anyone on the provisioning network); keep it in profiles/secrets.yaml';
  }
  if (r) return 'rendered per machine by rolecast at every boot (hostname, network, keepalived...): change it in the profiles, not the image';
  if (ROLECAST_PATHS.includes(path)) return 'added to every rootfs by rolecast';
  if (isExcluded(path)) return 'a runtime filesystem, not part of the image';
  return undefined;
}

/** Every path of the request that may not be captured, with the reason (empty: all fine). */
export function refusals(req: CaptureRequest, rules: CaptureRules): Refusal[] {
  const out: Refusal[] = [];
  for (const p of [...req.entries.map((e) => e.path), ...req.deletes]) {
    const reason = refusalFor(p, rules);
    if (reason) out.push({ path: `/${p}`, reason });
  }
  return out;
}

function classify(e: UploadEntry, base: Manifest): FileChange | undefined {
  const b = base.get(e.path);
  if (!b) return { path: `/${e.path}`, change: 'added' };
  const differs = b.type !== e.type ||
    (e.type === 'f' && (b.size !== e.data!.length || b.sha256 !== createHash('sha256').update(e.data!).digest('hex'))) ||
    (e.type === 'l' && b.target !== e.target);
  if (differs) return { path: `/${e.path}`, change: 'changed' };
  if (e.type !== 'l' && b.mode !== e.mode) return { path: `/${e.path}`, change: 'mode', detail: `${b.mode.toString(8)} -> ${e.mode.toString(8)}` };
  if (b.uid !== e.uid || b.gid !== e.gid) return { path: `/${e.path}`, change: 'owner', detail: `${b.uid}:${b.gid} -> ${e.uid}:${e.gid}` };
  return undefined;
}

/** The version the box booted, by name or (for an image that was not versioned then) by content hash. */
async function baseFileOf(dir: string, name: string, req: CaptureRequest): Promise<string> {
  try {
    return await resolveVersion(dir, name, req.base);
  } catch (err) {
    if (req.sha256) {
      await ensureVersioned(dir, name);
      try { return await resolveVersion(dir, name, versionFile(name, req.sha256)); } catch { /* below */ }
    }
    throw new CaptureError('E_CAPTURE_BASE_GONE', `the box booted ${name} version "${req.base}", which is no longer there (${(err as Error).message}): reboot it onto a current version and capture again`, 'request (base)');
  }
}

function parentsOf(p: string): string[] {
  const parts = p.split('/');
  return parts.slice(0, -1).map((_, i) => parts.slice(0, i + 1).join('/'));
}

async function appendedTar(entries: UploadEntry[], prefix: string, relinks: { name: string; linkname: string }[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => { chunks.push(c as Buffer); });
  const done = new Promise<void>((resolve, reject) => { pack.on('end', resolve); pack.on('error', reject); });
  const mtime = new Date(0);
  for (const e of entries) {
    const h = { name: `${prefix}${e.path}${e.type === 'd' ? '/' : ''}`, mode: e.mode, uid: e.uid, gid: e.gid, mtime };
    if (e.type === 'f') pack.entry({ ...h, type: 'file' }, e.data ?? Buffer.alloc(0));
    else if (e.type === 'd') pack.entry({ ...h, type: 'directory' });
    else pack.entry({ ...h, type: 'symlink', linkname: e.target });
  }
  for (const l of relinks) pack.entry({ name: `${prefix}${l.name}`, type: 'link', linkname: `${prefix}${l.linkname}`, mode: 0o644, uid: 0, gid: 0, mtime });
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

export interface CaptureResult {
  /** Undefined when the capture changed nothing: no version is made. */
  version?: VersionRecord;
  changes: FileChange[];
  base: string;
}

export interface CaptureMeta {
  box: { host: string; mac: string; address: string };
  at?: string;
}

/** Make the new version in <dir> (the image's version directory) from an accepted request. */
export async function captureVersion(dir: string, name: string, req: CaptureRequest, meta: CaptureMeta): Promise<CaptureResult> {
  const baseFile = await baseFileOf(dir, name, req);
  const basePath = join(dir, baseFile);
  const [index, manifest] = await Promise.all([tarIndexOf(basePath), manifestOf(basePath)]);
  const changes: FileChange[] = [];
  const write = new Map<string, UploadEntry>();
  for (const e of req.entries) {
    const c = classify(e, manifest);
    if (c) { changes.push(c); write.set(e.path, e); }
  }
  const deleted = new Set<string>();
  for (const d of req.deletes) {
    if (!manifest.has(d)) throw new CaptureError('E_CAPTURE_REFUSED', `/${d}: not in ${baseFile}, nothing to delete`, 'request (delete)', [{ path: `/${d}`, reason: `not in ${baseFile}` }]);
    if (write.has(d)) continue;
    deleted.add(d);
    changes.push({ path: `/${d}`, change: 'deleted' });
  }
  if (changes.length === 0) return { changes, base: baseFile };
  // New files in directories the base lacks get those directories (root, 0755), as the box had them.
  for (const p of [...write.keys()]) {
    for (const d of parentsOf(p)) if (!manifest.has(d) && !write.has(d)) write.set(d, { path: d, type: 'd', mode: 0o755, uid: 0, gid: 0 });
  }
  const gone = (n: string) => deleted.has(n) || [...deleted].some((d) => n.startsWith(`${d}/`));
  const segments: Segment[] = [];
  const relinks: { name: string; linkname: string }[] = [];
  for (const m of index.members) {
    if (m.type === '1' && m.linkname !== undefined && !write.has(m.name) && !gone(m.name)) {
      if (gone(m.linkname)) throw new CaptureError('E_CAPTURE_REFUSED', `/${m.name} is a hard link to /${m.linkname}, which this capture deletes: capture /${m.name} too`, 'request (delete)', [{ path: `/${m.linkname}`, reason: `/${m.name} links to it` }]);
      if (write.has(m.linkname)) { relinks.push({ name: m.name, linkname: m.linkname }); continue; }
    }
    if (m.name && (write.has(m.name) || gone(m.name))) continue;
    const last = segments.at(-1);
    if (last?.kind === 'file' && last.end === m.start) last.end = m.end;
    else segments.push({ kind: 'file', path: basePath, start: m.start, end: m.end, version: index.version });
  }
  const sorted = [...write.values()].sort((a, b) => (a.path < b.path ? -1 : 1));
  segments.push({ kind: 'buffer', data: await appendedTar(sorted, index.dotSlash ? './' : '', relinks) });
  const tmp = join(dir, `.${name}.capture-${process.pid}-${Date.now()}.tar`);
  try {
    await pipeline(segmentStream(segments), createWriteStream(tmp, { mode: 0o644 }));
    const sha256 = await sha256File(tmp);
    const file = versionFile(name, sha256);
    await rename(tmp, join(dir, file));
    const rec: VersionRecord = {
      file, sha256, kind: 'captured', at: meta.at ?? new Date().toISOString(), box: meta.box, parent: baseFile, changes,
      ...(req.who ? { by: req.who } : {}), ...(req.what ? { what: req.what } : {}),
    };
    return { version: await addVersion(dir, name, rec), changes, base: baseFile };
  } finally {
    await rm(tmp, { force: true });
  }
}
