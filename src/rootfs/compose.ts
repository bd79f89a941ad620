/**
 * A machine's rootfs: the role's base tar with the machine's generated files added or replaced,
 * streamed entry by entry through tar-stream (extract → pack), never buffered whole. Base entries keep
 * their own headers (modes, owners, symlinks, hard links, devices); generated entries and the
 * directories they need get fixed metadata (mtime 0, root:root), so the same inputs give the same bytes.
 */
import { createReadStream } from 'node:fs';
import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as tar from 'tar-stream';
import type { RenderedFile } from '../render/types.js';

const EPOCH = new Date(0);

function norm(name: string): string {
  return name.replace(/^\.?\/+/, '').replace(/\/+$/, '');
}

function parentsOf(path: string): string[] {
  const parts = norm(path).split('/');
  return parts.slice(0, -1).map((_, i) => parts.slice(0, i + 1).join('/'));
}

export interface ComposeOptions {
  /** Base image tar, or undefined for a tar of the generated files alone. */
  basePath?: string;
  files: readonly RenderedFile[];
}

export function composeRootfs(opts: ComposeOptions): Readable {
  const pack = tar.pack();
  const generated = new Map(opts.files.map((f) => [norm(f.path), f]));
  const seenDirs = new Set<string>();
  let prefix = '';

  const addGenerated = () => {
    const dirs = [...new Set(opts.files.flatMap((f) => parentsOf(f.path)))].filter((d) => !seenDirs.has(d)).sort();
    for (const d of dirs) pack.entry({ name: `${prefix}${d}/`, type: 'directory', mode: 0o755, uid: 0, gid: 0, uname: 'root', gname: 'root', mtime: EPOCH });
    for (const f of [...opts.files].sort((a, b) => (a.path < b.path ? -1 : 1))) {
      pack.entry({ name: `${prefix}${norm(f.path)}`, type: 'file', mode: f.mode, uid: 0, gid: 0, uname: 'root', gname: 'root', mtime: EPOCH }, f.content);
    }
    pack.finalize();
  };

  if (!opts.basePath) {
    addGenerated();
    return pack.pipe(new PassThrough());
  }
  const extract = tar.extract();
  let first = true;
  extract.on('entry', (header, stream, next) => {
    if (first) { prefix = header.name.startsWith('./') ? './' : ''; first = false; }
    const name = norm(header.name);
    if (header.type === 'directory') seenDirs.add(name);
    if (generated.has(name)) {
      // Replaced by the machine's own file, added at the end.
      stream.on('end', () => next());
      stream.resume();
      return;
    }
    const entry = pack.entry(header, (err) => next(err ?? undefined));
    stream.pipe(entry);
  });
  extract.on('finish', addGenerated);
  const out = new PassThrough();
  pipeline(createReadStream(opts.basePath), extract).catch((err: unknown) => out.destroy(err as Error));
  pack.on('error', (err) => out.destroy(err));
  return pack.pipe(out);
}
