/**
 * A machine's rootfs: the role's base tar with the machine's generated files added or replaced.
 *
 * The result is planned as a list of segments — byte ranges of the base image, copied verbatim (so every
 * header field, pax attribute, GNU long name, hard link and device node of the base survives exactly),
 * then one small buffer with the generated entries and the end-of-archive marker. Base members that a
 * generated file replaces are left out of the ranges. Generated entries and the directories they need
 * get fixed metadata (mtime 0, root:root), so the same inputs give the same bytes, and the length is
 * known before the first byte: Content-Length, Range and zero-copy sending all follow from that.
 */
import { acquireFileVersion, type SharedFile } from '../fsutil.js';
import { PassThrough, Readable } from 'node:stream';
import * as tar from 'tar-stream';
import { normName, tarIndexOf, type FileVersion } from './tarindex.js';

const EPOCH = new Date(0);

export type Segment =
  /** `version`: the file must still be this one when opened (an image replaced mid-plan is an error, not mixed bytes). */
  | { kind: 'file'; path: string; start: number; end: number; version?: FileVersion }
  | { kind: 'buffer'; data: Buffer };

export interface RootfsPlan {
  segments: Segment[];
  length: number;
}

function parentsOf(path: string): string[] {
  const parts = normName(path).split('/');
  return parts.slice(0, -1).map((_, i) => parts.slice(0, i + 1).join('/'));
}

/** A generated entry: a rendered file, or one rolecast adds itself (the manifest, as chunks). */
export interface TarFile {
  path: string;
  mode: number;
  content: string | Buffer | readonly Buffer[];
}

/** Chunks this size and up go out as they are; smaller ones are joined (one write, not hundreds). */
const KEEP_CHUNK = 64 * 1024;

export interface ComposeOptions {
  /** Base image tar, or undefined for a tar of the generated files alone. */
  basePath?: string;
  /** The caller's stat of basePath (else planRootfs stats it). */
  baseStat?: FileVersion;
  files: readonly TarFile[];
}

/**
 * The generated entries (and the directories they need that the base lacks) plus the end marker, as
 * buffers: large content chunks (the manifest's runs of base lines) as they came, the rest joined.
 */
async function generatedTar(files: readonly TarFile[], baseDirs: ReadonlySet<string>, prefix: string, relinks: readonly { name: string; linkname: string }[] = []): Promise<Buffer[]> {
  const pack = tar.pack();
  const out: Buffer[] = [];
  let small: Buffer[] = [];
  const flush = () => { if (small.length) out.push(small.length === 1 ? small[0]! : Buffer.concat(small)); small = []; };
  pack.on('data', (c: unknown) => {
    const b = c as Buffer;
    if (b.length < KEEP_CHUNK) { small.push(b); return; }
    flush();
    out.push(b);
  });
  const done = new Promise<void>((resolve, reject) => { pack.on('end', resolve); pack.on('error', reject); });
  const dirs = [...new Set(files.flatMap((f) => parentsOf(f.path)))].filter((d) => !baseDirs.has(d)).sort();
  for (const d of dirs) pack.entry({ name: `${prefix}${d}/`, type: 'directory', mode: 0o755, uid: 0, gid: 0, uname: 'root', gname: 'root', mtime: EPOCH });
  for (const f of [...files].sort((a, b) => (a.path < b.path ? -1 : 1))) {
    const header = { name: `${prefix}${normName(f.path)}`, type: 'file', mode: f.mode, uid: 0, gid: 0, uname: 'root', gname: 'root', mtime: EPOCH } as const;
    if (typeof f.content === 'string' || Buffer.isBuffer(f.content)) {
      pack.entry(header, f.content);
      continue;
    }
    // Chunks: streamed into the entry (tar-stream passes each on uncopied).
    const entry = pack.entry({ ...header, size: f.content.reduce((n, c) => n + c.length, 0) });
    for (const c of f.content) entry.write(c);
    entry.end(() => undefined);
  }
  // Base hard links to a replaced file: after it, so they link to the machine's version (as replacing
  // the file in place would have), and an extractor finds their target already there.
  for (const l of relinks) {
    pack.entry({ name: `${prefix}${l.name}`, type: 'link', linkname: `${prefix}${l.linkname}`, mode: 0o644, uid: 0, gid: 0, uname: 'root', gname: 'root', mtime: EPOCH });
  }
  pack.finalize();
  await done;
  flush();
  return out;
}

export async function planRootfs(opts: ComposeOptions): Promise<RootfsPlan> {
  const segments: Segment[] = [];
  const baseDirs = new Set<string>();
  const relinks: { name: string; linkname: string }[] = [];
  let prefix = '';
  if (opts.basePath) {
    const index = await tarIndexOf(opts.basePath, opts.baseStat);
    const replaced = new Set(opts.files.map((f) => normName(f.path)));
    prefix = index.dotSlash ? './' : '';
    let run: { start: number; end: number } | undefined;
    for (const m of index.members) {
      if (m.type === '5') baseDirs.add(m.name);
      const relink = m.type === '1' && m.linkname !== undefined && replaced.has(m.linkname) && !replaced.has(m.name);
      if (relink) relinks.push({ name: m.name, linkname: m.linkname! });
      if (relink || (m.name && replaced.has(m.name) && m.type !== '5')) {
        // Replaced by the machine's own file (added at the end): close the current run of ranges.
        if (run) segments.push({ kind: 'file', path: opts.basePath, ...run, version: index.version });
        run = undefined;
        continue;
      }
      if (run && run.end === m.start) run.end = m.end;
      else {
        if (run) segments.push({ kind: 'file', path: opts.basePath, ...run, version: index.version });
        run = { start: m.start, end: m.end };
      }
    }
    if (run) segments.push({ kind: 'file', path: opts.basePath, ...run, version: index.version });
  }
  for (const data of await generatedTar(opts.files, baseDirs, prefix, relinks)) segments.push({ kind: 'buffer', data });
  return { segments, length: segments.reduce((n, s) => n + (s.kind === 'file' ? s.end - s.start : s.data.length), 0) };
}

/** Restrict segments to the byte range [from, to) of their concatenation. */
export function sliceSegments(segments: readonly Segment[], from: number, to: number): Segment[] {
  const out: Segment[] = [];
  let at = 0;
  for (const s of segments) {
    const len = s.kind === 'file' ? s.end - s.start : s.data.length;
    const a = Math.max(from, at);
    const b = Math.min(to, at + len);
    if (a < b) {
      out.push(s.kind === 'file' ? { ...s, start: s.start + (a - at), end: s.start + (b - at) } : { kind: 'buffer', data: s.data.subarray(a - at, b - at) });
    }
    at += len;
    if (at >= to) break;
  }
  return out;
}

const CHUNK = 512 * 1024;

/** A segment's file for reading, shared with the other responses that send the same version (fsutil's acquireFileVersion). */
export function acquireVersion(s: Extract<Segment, { kind: 'file' }>): Promise<SharedFile> {
  return acquireFileVersion(s.path, s.version);
}

/** The segments as a byte stream (file ranges read in 512 KiB chunks; memory bounded by the consumer's backpressure). */
export function segmentStream(segments: readonly Segment[]): Readable {
  async function* bytes(): AsyncGenerator<Buffer> {
    const handles = new Map<string, SharedFile>(); // each file acquired once per stream
    try {
      for (const s of segments) {
        if (s.kind === 'buffer') {
          if (s.data.length) yield s.data;
          continue;
        }
        let h = handles.get(s.path);
        if (!h) { h = await acquireVersion(s); handles.set(s.path, h); }
        const { fh } = h;
        for (let at = s.start; at < s.end;) {
          const buf = Buffer.allocUnsafe(Math.min(CHUNK, s.end - at));
          const { bytesRead } = await fh.read(buf, 0, buf.length, at);
          if (bytesRead === 0) throw new Error(`${s.path} shrank while being sent (at byte ${at} of ${s.end})`);
          at += bytesRead;
          yield bytesRead === buf.length ? buf : buf.subarray(0, bytesRead);
        }
      }
    } finally {
      for (const h of handles.values()) h.release();
    }
  }
  return Readable.from(bytes(), { objectMode: false, highWaterMark: CHUNK });
}

/** Convenience: the whole composed rootfs as a stream. */
export function composeRootfs(opts: ComposeOptions): Readable {
  const out = new PassThrough();
  planRootfs(opts).then((plan) => {
    segmentStream(plan.segments).on('error', (err) => out.destroy(err)).pipe(out);
  }, (err: unknown) => out.destroy(err as Error));
  return out;
}
