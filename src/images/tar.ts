/**
 * A small deterministic tar writer (tar-stream) for images built here: entries sorted, parents added,
 * mtime 0, root:root, so the same inputs give the same bytes — and the same content-hash version.
 */
import * as tar from 'tar-stream';

export type TarEntry =
  | { type: 'dir'; path: string; mode?: number }
  | { type: 'file'; path: string; mode: number; data: Buffer }
  | { type: 'symlink'; path: string; target: string };

const EPOCH = new Date(0);

function withParents(entries: TarEntry[]): TarEntry[] {
  const all = new Map<string, TarEntry>();
  for (const e of entries) {
    const parts = e.path.replace(/^\/+/, '').replace(/\/+$/, '').split('/');
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      if (!all.has(dir)) all.set(dir, { type: 'dir', path: dir });
    }
    all.set(parts.join('/'), { ...e, path: parts.join('/') });
  }
  return [...all.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

export async function writeTar(entries: TarEntry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => chunks.push(c as Buffer));
  const done = new Promise<void>((resolve, reject) => {
    pack.on('end', resolve);
    pack.on('error', reject);
  });
  const base = { uid: 0, gid: 0, uname: 'root', gname: 'root', mtime: EPOCH };
  for (const e of withParents(entries)) {
    if (e.type === 'dir') pack.entry({ ...base, name: `${e.path}/`, type: 'directory', mode: e.mode ?? 0o755 });
    else if (e.type === 'file') pack.entry({ ...base, name: e.path, type: 'file', mode: e.mode }, e.data);
    else pack.entry({ ...base, name: e.path, type: 'symlink', linkname: e.target, mode: 0o777 });
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}
