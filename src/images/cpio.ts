/**
 * A deterministic cpio "newc" writer (the format the kernel unpacks as an initramfs): entries sorted,
 * inode numbers assigned in order, uid/gid 0 and a fixed mtime, so the same inputs give the same bytes.
 */
export type CpioEntry =
  | { type: 'dir'; path: string; mode?: number }
  | { type: 'file'; path: string; mode: number; data: Buffer }
  | { type: 'symlink'; path: string; target: string }
  | { type: 'chardev'; path: string; mode: number; major: number; minor: number };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;

function hex8(n: number): string {
  return n.toString(16).padStart(8, '0');
}

function pad4(n: number): number {
  return (4 - (n % 4)) % 4;
}

function record(ino: number, mode: number, data: Buffer, name: string, mtime: number, rdev: [number, number] = [0, 0], nlink = 1): Buffer {
  const nameBuf = Buffer.from(`${name}\0`);
  const header = `070701${[ino, mode, 0, 0, nlink, mtime, data.length, 0, 0, rdev[0], rdev[1], nameBuf.length, 0].map(hex8).join('')}`;
  const head = Buffer.concat([Buffer.from(header, 'ascii'), nameBuf]);
  return Buffer.concat([head, Buffer.alloc(pad4(head.length)), data, Buffer.alloc(pad4(data.length))]);
}

/** Parent directories are added for every entry; paths are relative ("bin/busybox"). */
export function writeCpio(entries: CpioEntry[], mtime = 0): Buffer {
  const all = new Map<string, CpioEntry>();
  for (const e of entries) {
    const parts = e.path.replace(/^\/+/, '').split('/');
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      if (!all.has(dir)) all.set(dir, { type: 'dir', path: dir });
    }
    all.set(parts.join('/'), { ...e, path: parts.join('/') });
  }
  const sorted = [...all.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const out: Buffer[] = [];
  let ino = 1;
  for (const e of sorted) {
    if (e.type === 'dir') out.push(record(ino++, S_IFDIR | (e.mode ?? 0o755), Buffer.alloc(0), e.path, mtime, [0, 0], 2));
    else if (e.type === 'file') out.push(record(ino++, S_IFREG | e.mode, e.data, e.path, mtime));
    else if (e.type === 'symlink') out.push(record(ino++, S_IFLNK | 0o777, Buffer.from(e.target), e.path, mtime));
    else out.push(record(ino++, S_IFCHR | e.mode, Buffer.alloc(0), e.path, mtime, [e.major, e.minor]));
  }
  out.push(record(0, 0, Buffer.alloc(0), 'TRAILER!!!', 0, [0, 0], 1));
  return Buffer.concat(out);
}
