/**
 * What a box sends with `rolecast-capture`: a tar whose first member is the request
 * (run/rolecast-capture/request, text lines "key value") followed by the files it captures, with their
 * mode and owner. Parsed from a bounded buffer; anything malformed is a CaptureError naming the field
 * (HTTP 400), never a crash and never a half-made version.
 *
 * Request fields: `rolecast-capture 1` (first line), `base <version>` (what the box booted),
 * `sha256 <hex>` (that version's content hash), `who`, `what` (free text, one line), and any number of
 * `delete /path`.
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as tar from 'tar-stream';
import { RolecastError, type ErrorCode } from '../errors.js';
import { normName } from '../rootfs/tarindex.js';

export const REQUEST_MEMBER = 'run/rolecast-capture/request';

export interface Refusal { path: string; reason: string }

/** A capture that cannot become a version: the code's status is the HTTP answer, `field` what was wrong. */
export class CaptureError extends RolecastError {
  constructor(code: ErrorCode, message: string, readonly field?: string, readonly refused?: Refusal[]) {
    super(code, message, { details: { ...(field ? { field } : {}), ...(refused ? { refused } : {}) } });
  }
}

export interface UploadEntry {
  path: string;
  type: 'f' | 'd' | 'l';
  mode: number;
  uid: number;
  gid: number;
  data?: Buffer;
  target?: string;
}

export interface CaptureRequest {
  base: string;
  sha256?: string;
  who?: string;
  what?: string;
  deletes: string[];
  entries: UploadEntry[];
}

const bad = (field: string, message: string) => new CaptureError('E_CAPTURE_MALFORMED', `${field}: ${message}`, field);

/** A path as the box names it, normalised; refused when it could name something outside the image. */
export function cleanPath(raw: string, field: string): string {
  const p = normName(raw);
  if (!p || p.includes('\n') || p.includes('\0')) throw bad(field, `"${raw.slice(0, 80)}" is not a path`);
  if (p.split('/').some((c) => c === '..' || c === '.' || c === '')) throw bad(field, `"${raw.slice(0, 80)}" must not contain "..", "." or "//"`);
  if (p.length > 1024) throw bad(field, 'path longer than 1024 characters');
  return p;
}

export function parseRequestText(text: string): Omit<CaptureRequest, 'entries'> {
  const lines = text.split('\n');
  if (lines[0] !== 'rolecast-capture 1') throw bad('request line 1', `expected "rolecast-capture 1", got "${(lines[0] ?? '').slice(0, 40)}"`);
  const out: Partial<Omit<CaptureRequest, 'entries'>> & { deletes: string[] } = { deletes: [] };
  lines.slice(1).forEach((l, i) => {
    if (!l) return;
    const at = `request line ${i + 2}`;
    const m = /^(\w+) (.*)$/.exec(l);
    if (!m) throw bad(at, `"${l.slice(0, 40)}" is not "field value"`);
    const [, key, value] = m as unknown as [string, string, string];
    if (value.length > 1024) throw bad(`${at} (${key})`, 'value longer than 1024 characters');
    if (key === 'base') {
      if (!/^[\w.-]{1,200}$/.test(value)) throw bad(`${at} (base)`, `"${value.slice(0, 40)}" is not a version name`);
      out.base = value;
    } else if (key === 'sha256') {
      if (!/^[0-9a-f]{64}$/.test(value)) throw bad(`${at} (sha256)`, 'not 64 hex digits');
      out.sha256 = value;
    } else if (key === 'who' || key === 'what') {
      out[key] = value.slice(0, 200);
    } else if (key === 'delete') {
      out.deletes.push(cleanPath(value, `${at} (delete)`));
    } else {
      throw bad(at, `unknown field "${key}" (base, sha256, who, what, delete)`);
    }
  });
  if (!out.base) throw bad('request (base)', 'missing: the version this box booted (from /etc/rolecast/manifest)');
  return out as Omit<CaptureRequest, 'entries'>;
}

/** Parse an upload. `maxFiles` bounds the member count (a tar of a million empty files is small). */
export async function parseUpload(body: Buffer, maxFiles = 100_000): Promise<CaptureRequest> {
  if (body.length === 0) throw bad('body', 'empty: send the tar rolecast-capture makes');
  let request: Omit<CaptureRequest, 'entries'> | undefined;
  const entries: UploadEntry[] = [];
  const ex = tar.extract();
  let problem: CaptureError | undefined;
  ex.on('entry', (h, stream, next) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: unknown) => { chunks.push(c as Buffer); });
    stream.on('end', () => {
      try {
        const name = normName(h.name);
        if (!request) {
          if (name !== REQUEST_MEMBER) throw bad('upload', `first member must be ${REQUEST_MEMBER}, got "${h.name.slice(0, 80)}"`);
          request = parseRequestText(Buffer.concat(chunks).toString('utf8'));
        } else {
          if (entries.length >= maxFiles) throw new CaptureError('E_CAPTURE_TOO_LARGE', `upload: more than ${maxFiles} members`, 'upload');
          entries.push(toEntry(h, Buffer.concat(chunks), entries));
        }
      } catch (err) {
        problem ??= err as CaptureError;
      }
      next();
    });
    stream.resume();
  });
  try {
    await pipeline(Readable.from([body]), ex);
  } catch (err) {
    throw bad('upload', `not a tar archive: ${(err as Error).message}`);
  }
  if (problem) throw problem;
  if (!request) throw bad('upload', `no ${REQUEST_MEMBER} member`);
  return { ...request, entries };
}

function toEntry(h: tar.Header, data: Buffer, before: UploadEntry[]): UploadEntry {
  const path = cleanPath(h.name, `member "${h.name.slice(0, 80)}"`);
  const base = { path, mode: (h.mode ?? 0o644) & 0o7777, uid: h.uid ?? 0, gid: h.gid ?? 0 };
  switch (h.type) {
    case 'file': case 'contiguous-file': return { ...base, type: 'f', data };
    case 'directory': return { ...base, type: 'd' };
    case 'symlink': return { ...base, type: 'l', mode: 0o777, target: h.linkname ?? '' };
    case 'link': {
      // tar stores a second name of an already-sent file as a hard link: same content.
      const target = before.find((e) => e.path === normName(h.linkname ?? ''));
      if (target?.type !== 'f') throw bad(`member "${path}"`, `hard link to "${h.linkname}", which is not in the upload`);
      return { ...base, type: 'f', data: target.data! };
    }
    default:
      throw new CaptureError('E_CAPTURE_REFUSED', `/${path}: a ${h.type}: only files, directories and symlinks are captured`, `member "${path}"`, [{ path: `/${path}`, reason: `a ${h.type}: only files, directories and symlinks are captured` }]);
  }
}
