/**
 * The manifest of an image: one line per path with its type, mode, owner and content hash, so a running
 * box can tell what it changed since it booted (`rolecast-capture --changed`) and two versions can be
 * compared (`rolecast images diff`). Read from the tar itself, once per file version.
 *
 * Text form (what /etc/rolecast/manifest holds on the box; busybox sh + awk read it):
 *   # rolecast manifest 1
 *   # key value                      header: server, mac, image, version
 *   <type> <mode> <uid>:<gid> <sum> /<path>
 * type: f file, d directory, l symlink (sum = its target, with %, space and newline as %25 %20 %0A), o other (devices, fifos: never
 * compared), r a file rolecast renders per machine, s a secret it renders (sum "-"), x an excluded
 * prefix (/proc, /run...). mode is octal without leading zeros, as `stat -c %a` prints it. The path is
 * last, so it may hold spaces; a path with a newline is left out (no shell tool could name it).
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import * as tar from 'tar-stream';
import { normName, type FileVersion } from '../rootfs/tarindex.js';
import { statShared } from '../fsutil.js';

export type EntryType = 'f' | 'd' | 'l' | 'o';

export interface ManifestEntry {
  /** Normalised: no leading "/" or "./", no trailing "/". */
  path: string;
  type: EntryType;
  mode: number;
  uid: number;
  gid: number;
  /** sha256 of a file's content or of a symlink's target; undefined for directories and others. */
  sha256?: string;
  size?: number;
  /** A symlink's target. */
  target?: string;
}

export type Manifest = Map<string, ManifestEntry>;

/** Paths a capture never looks at: kernel and runtime filesystems, scratch space. */
export const EXCLUDED = ['proc', 'sys', 'dev', 'run', 'tmp', 'var/tmp', 'var/run', 'var/lock', 'mnt', 'media', 'lost+found'];

export function isExcluded(path: string): boolean {
  const p = normName(path);
  return EXCLUDED.some((x) => p === x || p.startsWith(`${x}/`));
}

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

function typeOf(t: string | null | undefined): EntryType | 'link' | 'skip' {
  if (t === 'file' || t === 'contiguous-file') return 'f';
  if (t === 'directory') return 'd';
  if (t === 'symlink') return 'l';
  if (t === 'link') return 'link';
  if (t === 'character-device' || t === 'block-device' || t === 'fifo') return 'o';
  return 'skip'; // pax headers and the like: tar-stream folds them into the next entry
}

/** Read a whole tar (a stream) into a manifest; hard links take their target's content. */
export async function manifestOfStream(input: NodeJS.ReadableStream): Promise<Manifest> {
  const out: Manifest = new Map();
  const ex = tar.extract();
  ex.on('entry', (h, body, next) => {
    const h2 = createHash('sha256');
    let size = 0;
    body.on('data', (c: unknown) => { h2.update(c as Buffer); size += (c as Buffer).length; });
    body.on('end', () => {
      const path = normName(h.name);
      const t = typeOf(h.type);
      const base = { path, mode: (h.mode ?? 0) & 0o7777, uid: h.uid ?? 0, gid: h.gid ?? 0 };
      if (path && !path.includes('\n')) {
        if (t === 'f') out.set(path, { ...base, type: 'f', sha256: h2.digest('hex'), size });
        else if (t === 'd' || t === 'o') out.set(path, { ...base, type: t });
        else if (t === 'l') out.set(path, { ...base, type: 'l', mode: 0o777, target: h.linkname ?? '', sha256: sha(h.linkname ?? '') });
        else if (t === 'link') {
          const target = out.get(normName(h.linkname ?? ''));
          if (target?.type === 'f') out.set(path, { ...target, path });
        }
      }
      next();
    });
    body.resume();
  });
  await pipeline(input, ex);
  return out;
}

const cache = new Map<string, { key: string; manifest: Promise<Manifest> }>();

/** The manifest of a tar file, computed once per file version (size, mtime, inode). */
export async function manifestOf(file: string, st?: FileVersion): Promise<Manifest> {
  st ??= await statShared(file);
  const key = `${st.size}:${st.mtimeMs}:${st.ino}`;
  const hit = cache.get(file);
  if (hit?.key === key) return hit.manifest;
  const manifest = manifestOfStream(createReadStream(file, { highWaterMark: 1024 * 1024 }));
  cache.set(file, { key, manifest });
  manifest.catch(() => { if (cache.get(file)?.manifest === manifest) cache.delete(file); });
  return manifest;
}

export interface GeneratedPath {
  path: string;
  mode: number;
  secret: boolean;
  content?: string | Buffer;
}

export interface ManifestHeader {
  server?: string;
  mac?: string;
  image?: string;
  version?: string;
  sha256?: string;
}

/** A symlink target as one field (awk on the box encodes `stat -c %N`'s output the same way). */
export const encodeTarget = (t: string) => t.replace(/%/g, '%25').replace(/ /g, '%20').replace(/\n/g, '%0A') || '%';
const decodeTarget = (s: string) => (s === '%' ? '' : s.replace(/%0A/g, '\n').replace(/%20/g, ' ').replace(/%25/g, '%'));

function line(e: ManifestEntry): string {
  const sum = e.type === 'l' ? encodeTarget(e.target ?? '') : e.sha256 ?? '-';
  return `${e.type} ${e.mode.toString(8)} ${e.uid}:${e.gid} ${sum} /${e.path}`;
}

/**
 * The manifest text a booted box gets: the base's entries, with the paths rolecast generates for this
 * machine marked r (or s, secret: no hash) instead, and the excluded prefixes.
 */
export function formatManifest(base: Manifest, header: ManifestHeader, generated: readonly GeneratedPath[] = [], dirs: readonly string[] = []): string {
  const gen = new Map(generated.map((g) => [normName(g.path), g]));
  const lines = ['# rolecast manifest 1'];
  for (const [k, v] of Object.entries(header)) if (v !== undefined) lines.push(`# ${k} ${v}`);
  for (const x of EXCLUDED) lines.push(`x 0 0:0 - /${x}`);
  const all = new Map(base);
  for (const d of dirs) if (!all.has(d)) all.set(d, { path: d, type: 'd', mode: 0o755, uid: 0, gid: 0 });
  for (const p of [...new Set([...all.keys(), ...gen.keys()])].sort()) {
    const g = gen.get(p);
    if (g) {
      const sum = g.secret || g.content === undefined ? '-' : sha(g.content);
      lines.push(`${g.secret ? 's' : 'r'} ${g.mode.toString(8)} 0:0 ${sum} /${p}`);
    } else if (!isExcluded(p)) {
      lines.push(line(all.get(p)!));
    }
  }
  return `${lines.join('\n')}\n`;
}

interface PreparedBase {
  /** The base's paths, sorted as formatManifest sorts them (UTF-16 code units). */
  keys: string[];
  /** Byte offset in `text` of each key's line (an excluded path's line is empty); one more at the end. */
  at: number[];
  /** Every base line, in key order, each ending in a newline. */
  text: Buffer;
}

const preparedBases = new WeakMap<Manifest, PreparedBase>();

/** The base's own lines, sorted and joined once per manifest (manifestOf keeps one per file version). */
function prepareBase(base: Manifest): PreparedBase {
  let p = preparedBases.get(base);
  if (p) return p;
  const keys = [...base.keys()].sort();
  const at: number[] = [];
  const parts: string[] = [];
  let n = 0;
  for (const k of keys) {
    at.push(n);
    if (isExcluded(k)) continue;
    const l = `${line(base.get(k)!)}\n`;
    parts.push(l);
    n += Buffer.byteLength(l);
  }
  at.push(n);
  p = { keys, at, text: Buffer.from(parts.join('')) };
  preparedBases.set(base, p);
  return p;
}

/** The first index whose key is not below `k`. */
function lowerBound(keys: readonly string[], k: string): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (keys[mid]! < k) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * formatManifest's bytes, for a rootfs request: the base's lines are sorted and joined once per base
 * version, and each machine's few generated paths and directories are merged into them by binary
 * search. formatManifest sorted and formatted every line of the base for every request (~120 ms of the
 * event loop per machine with a 20,000-path image). The runs of base lines are slices of the prepared
 * text, not copies: the rootfs sends them as they are.
 */
export function formatManifestChunks(base: Manifest, header: ManifestHeader, generated: readonly GeneratedPath[] = [], dirs: readonly string[] = []): Buffer[] {
  const p = prepareBase(base);
  const head = ['# rolecast manifest 1'];
  for (const [k, v] of Object.entries(header)) if (v !== undefined) head.push(`# ${k} ${v}`);
  for (const x of EXCLUDED) head.push(`x 0 0:0 - /${x}`);
  // The lines that are not the base's own: generated paths (in place of a base line of the same path)
  // and directories the base lacks.
  const extra = new Map<string, string>();
  for (const g of generated) {
    const path = normName(g.path);
    const sum = g.secret || g.content === undefined ? '-' : sha(g.content);
    extra.set(path, `${g.secret ? 's' : 'r'} ${g.mode.toString(8)} 0:0 ${sum} /${path}`);
  }
  for (const d of dirs) {
    if (!extra.has(d) && !base.has(d) && !isExcluded(d)) extra.set(d, line({ path: d, type: 'd', mode: 0o755, uid: 0, gid: 0 }));
  }
  const chunks: Buffer[] = [Buffer.from(`${head.join('\n')}\n`)];
  let from = 0;
  for (const k of [...extra.keys()].sort()) {
    const j = lowerBound(p.keys, k);
    chunks.push(p.text.subarray(p.at[from], p.at[j]), Buffer.from(`${extra.get(k)!}\n`));
    from = p.keys[j] === k ? j + 1 : j;
  }
  chunks.push(p.text.subarray(p.at[from], p.at[p.keys.length]));
  return chunks.filter((c) => c.length > 0);
}

/** formatManifestChunks as one buffer. */
export function formatManifestBuffer(base: Manifest, header: ManifestHeader, generated: readonly GeneratedPath[] = [], dirs: readonly string[] = []): Buffer {
  return Buffer.concat(formatManifestChunks(base, header, generated, dirs));
}

/** Parse the text form back (tests, and `images diff` of manifests sent by a box). */
export function parseManifest(text: string): { header: ManifestHeader; entries: Manifest; marked: Map<string, 'r' | 's' | 'x'> } {
  const header: Record<string, string> = {};
  const entries: Manifest = new Map();
  const marked = new Map<string, 'r' | 's' | 'x'>();
  for (const l of text.split('\n')) {
    if (!l) continue;
    const h = /^# (\w+) (.*)$/.exec(l);
    if (h) { header[h[1]!] = h[2]!; continue; }
    const m = /^([fdlorsx]) ([0-7]+) (\d+):(\d+) (\S+) \/(.*)$/.exec(l);
    if (!m) continue;
    const [, t, mode, uid, gid, sum, path] = m as unknown as [string, string, string, string, string, string, string];
    if (t === 'r' || t === 's' || t === 'x') { marked.set(path, t); continue; }
    const e: ManifestEntry = { path, type: t as EntryType, mode: parseInt(mode, 8), uid: Number(uid), gid: Number(gid) };
    if (t === 'l') e.target = decodeTarget(sum);
    else if (sum !== '-') e.sha256 = sum;
    entries.set(path, e);
  }
  return { header, entries, marked };
}
