/**
 * An index of a tar archive's members by byte range, so a machine's rootfs can be spliced together
 * from ranges of the role's base image (copied byte for byte, never re-encoded: pax attributes, GNU
 * long names, devices, hard links and every header field survive exactly) plus the machine's own
 * generated entries.
 *
 * A member is everything that describes one path: its pax 'x' / GNU 'L' 'K' prefix headers, its header
 * and its data padded to 512 bytes. A pax global header ('g') is a member of its own with no name.
 * Reads headers only (and the small data of prefix headers); the index of a 200 MB base costs a few
 * thousand pread calls, once per file version.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { statShared } from '../fsutil.js';

const BLOCK = 512;

export interface TarMember {
  /** Path as the archive names it, without a leading "./" or "/" and without a trailing "/". */
  name: string;
  /** The entry's typeflag: '0' file, '1' hard link, '2' symlink, '3'/'4' devices, '5' directory, 'g' ... */
  type: string;
  /** Byte range of the whole member in the archive: [start, end). */
  start: number;
  end: number;
  /** For hard links ('1'): the member they link to, normalised like `name`. */
  linkname?: string;
}

export interface TarIndex {
  members: TarMember[];
  /** Where the end-of-archive marker (two zero blocks) starts: everything after it is padding. */
  end: number;
  /** The first member's raw name starts with "./" (GNU tar -C dir .): generated entries follow suit. */
  dotSlash: boolean;
  /** The file version indexed: whoever sends ranges from it checks the file it opens is still this one. */
  version?: FileVersion;
}

export interface FileVersion { ino: number; size: number; mtimeMs: number }

export class TarFormatError extends Error {
  constructor(readonly file: string, readonly offset: number, reason: string) {
    super(`${file}: not a valid tar archive at byte ${offset}: ${reason}`);
    this.name = 'TarFormatError';
  }
}

export interface TarHeader {
  name: string;
  size: number;
  type: string;
  linkname: string;
}

function cstring(b: Buffer, from: number, len: number): string {
  const end = b.indexOf(0, from);
  return b.toString('utf8', from, end < 0 || end > from + len ? from + len : end);
}

/** A numeric header field: octal text, or GNU base-256 when the first byte has its high bit set. */
function numeric(b: Buffer, from: number, len: number): number | undefined {
  if (b[from]! & 0x80) {
    let v = b[from]! & 0x7f;
    for (let i = from + 1; i < from + len; i++) v = v * 256 + b[i]!;
    return v;
  }
  const text = b.toString('latin1', from, from + len).replace(/\0.*$/s, '').trim();
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) return undefined;
  return parseInt(text, 8);
}

/** One 512-byte header block: 'zero' for an end-of-archive block, a reason string when invalid. */
export function parseHeader(b: Buffer): TarHeader | 'zero' | string {
  if (b.length < BLOCK) return 'truncated header';
  let zero = true;
  for (let i = 0; i < BLOCK; i++) if (b[i] !== 0) { zero = false; break; }
  if (zero) return 'zero';
  // The checksum counts the checksum field itself as eight spaces.
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : b[i]!;
  const stored = numeric(b, 148, 8);
  if (stored !== sum) return `header checksum ${stored ?? 'unreadable'} is not ${sum}`;
  const size = numeric(b, 124, 12);
  if (size === undefined) return 'unreadable size field';
  const type = b[156] === 0 ? '0' : String.fromCharCode(b[156]!);
  let name = cstring(b, 0, 100);
  // POSIX ustar splits long names into prefix (345..500) + "/" + name.
  if (b.toString('latin1', 257, 262) === 'ustar' && b[257 + 5] === 0x00) {
    const prefix = cstring(b, 345, 155);
    if (prefix) name = `${prefix}/${name}`;
  }
  return { name, size, type, linkname: cstring(b, 157, 100) };
}

/** One record of a pax extended header's data ("<len> <key>=<value>\n" records; the last one wins, as in tar). */
export function paxRecord(data: Buffer, key: string): string | undefined {
  let at = 0;
  let found: string | undefined;
  while (at < data.length) {
    const sp = data.indexOf(0x20, at);
    if (sp < 0) break;
    const len = Number(data.toString('latin1', at, sp));
    if (!Number.isInteger(len) || len <= 0 || at + len > data.length) break;
    const rec = data.toString('utf8', sp + 1, at + len - 1);
    const eq = rec.indexOf('=');
    if (eq > 0 && rec.slice(0, eq) === key) found = rec.slice(eq + 1);
    at += len;
  }
  return found;
}

export function normName(name: string): string {
  return name.replace(/^\.?\/+/, '').replace(/\/+$/, '');
}

const padded = (n: number) => Math.ceil(n / BLOCK) * BLOCK;

async function readExactly(fh: FileHandle, file: string, length: number, position: number): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  const { bytesRead } = await fh.read(buf, 0, length, position);
  if (bytesRead !== length) throw new TarFormatError(file, position, `file ends inside a member (${bytesRead} of ${length} bytes)`);
  return buf;
}

/** Index one archive (headers only). Throws TarFormatError naming the file and byte offset. */
export async function indexTar(file: string): Promise<TarIndex> {
  const fh = await open(file, 'r');
  try {
    const size = (await fh.stat()).size;
    const members: TarMember[] = [];
    let at = 0;
    let memberStart = 0;
    let longName: string | undefined;
    let longLink: string | undefined;
    let dotSlash: boolean | undefined;
    const header = Buffer.alloc(BLOCK);
    for (;;) {
      if (at + BLOCK > size) {
        // No end marker: tolerated when the archive simply stops at a member boundary.
        if (at === size && memberStart === at) return { members, end: at, dotSlash: dotSlash ?? false };
        throw new TarFormatError(file, at, 'file ends inside a header');
      }
      const { bytesRead } = await fh.read(header, 0, BLOCK, at);
      if (bytesRead !== BLOCK) throw new TarFormatError(file, at, 'short read');
      const h = parseHeader(header);
      if (h === 'zero') {
        if (memberStart !== at) throw new TarFormatError(file, at, 'end-of-archive marker right after an extended header');
        return { members, end: at, dotSlash: dotSlash ?? false };
      }
      if (typeof h === 'string') throw new TarFormatError(file, at, h);
      const dataAt = at + BLOCK;
      const next = dataAt + padded(h.size);
      if (next > size) throw new TarFormatError(file, at, `member "${h.name}" of ${h.size} bytes runs past the end of the file`);
      if (h.type === 'x' || h.type === 'L' || h.type === 'K') {
        // Prefix headers describe the next entry: they belong to its member.
        if (h.size > 1024 * 1024) throw new TarFormatError(file, at, `extended header of ${h.size} bytes`);
        const data = await readExactly(fh, file, h.size, dataAt);
        if (h.type === 'x') {
          longName = paxRecord(data, 'path') ?? longName;
          longLink = paxRecord(data, 'linkpath') ?? longLink;
        } else if (h.type === 'L') {
          longName = cstring(data, 0, data.length);
        } else {
          longLink = cstring(data, 0, data.length);
        }
        at = next;
        continue;
      }
      const raw = h.type === 'g' ? '' : longName ?? h.name;
      if (h.type !== 'g' && dotSlash === undefined) dotSlash = raw.startsWith('./');
      const member: TarMember = { name: h.type === 'g' ? '' : normName(raw), type: h.type, start: memberStart, end: next };
      if (h.type === '1') member.linkname = normName(longLink ?? h.linkname);
      members.push(member);
      longName = undefined;
      longLink = undefined;
      at = next;
      memberStart = at;
    }
  } finally {
    await fh.close();
  }
}

const cache = new Map<string, { key: string; index: Promise<TarIndex> }>();

/**
 * The index of a base image, computed once per file version (path, size, mtime, inode). Concurrent
 * first requests share one indexing pass. `st`: the caller's stat of `file` (a rootfs request stats its base
 * once for every cache it consults: the index, the manifest, the sha256).
 */
export async function tarIndexOf(file: string, st?: FileVersion): Promise<TarIndex> {
  st ??= await statShared(file);
  const key = `${st.size}:${st.mtimeMs}:${st.ino}`;
  const hit = cache.get(file);
  if (hit?.key === key) return hit.index;
  const version = { ino: st.ino, size: st.size, mtimeMs: st.mtimeMs };
  const index = indexTar(file).then((i) => ({ ...i, version }));
  cache.set(file, { key, index });
  index.catch(() => { if (cache.get(file)?.index === index) cache.delete(file); });
  return index;
}
