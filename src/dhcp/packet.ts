/**
 * DHCPv4 packets (RFC 2131 BOOTP header, RFC 2132 options). Pure: bytes in, values out, never a throw.
 * Option overload (52) folds options from the file/sname fields in; repeated codes are concatenated
 * (RFC 3396); unknown options are kept as raw bytes.
 */
export const MAGIC = 0x63825363;

export const MSG = { DISCOVER: 1, OFFER: 2, REQUEST: 3, DECLINE: 4, ACK: 5, NAK: 6, RELEASE: 7, INFORM: 8 } as const;
export const MSG_NAME: Record<number, string> = { 1: 'discover', 2: 'offer', 3: 'request', 4: 'decline', 5: 'ack', 6: 'nak', 7: 'release', 8: 'inform' };

export interface DhcpPacket {
  op: number; // 1 request, 2 reply
  htype: number;
  hlen: number;
  hops: number;
  xid: number;
  secs: number;
  flags: number; // 0x8000 = broadcast
  ciaddr: string;
  yiaddr: string;
  siaddr: string;
  giaddr: string;
  chaddr: Buffer; // 16 bytes
  sname: string;
  file: string;
  options: Map<number, Buffer>;
}

export type DecodedDhcp = { ok: true; packet: DhcpPacket } | { ok: false; reason: string };

// Most requests carry 0.0.0.0 in three of the four address fields, and empty sname/file: no string made for them.
const ip = (b: Buffer, o: number) => (b[o] === 0 && b[o + 1] === 0 && b[o + 2] === 0 && b[o + 3] === 0 ? '0.0.0.0' : `${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}`);

function cstring(b: Buffer): string {
  if (b.length === 0 || b[0] === 0) return '';
  const end = b.indexOf(0);
  return b.toString('latin1', 0, end < 0 ? b.length : end);
}

/** Parse an option area into `into`; returns an error reason or undefined. */
function parseOptions(area: Buffer, into: Map<number, Buffer>): string | undefined {
  let i = 0;
  while (i < area.length) {
    const code = area[i]!;
    if (code === 0) { i++; continue; }
    if (code === 255) return undefined;
    if (i + 1 >= area.length) return `option ${code} has no length`;
    const len = area[i + 1]!;
    if (i + 2 + len > area.length) return `option ${code} runs past the packet (length ${len})`;
    const data = area.subarray(i + 2, i + 2 + len);
    const prev = into.get(code);
    into.set(code, prev ? Buffer.concat([prev, data]) : data);
    i += 2 + len;
  }
  return undefined; // a missing END is tolerated: several PXE ROMs omit it
}

export function decodeDhcp(msg: Buffer): DecodedDhcp {
  if (msg.length < 240) return { ok: false, reason: `too short for BOOTP + magic (${msg.length} bytes)` };
  if (msg.readUInt32BE(236) !== MAGIC) return { ok: false, reason: 'no DHCP magic cookie' };
  const hlen = msg[2]!;
  if (hlen > 16) return { ok: false, reason: `hardware address length ${hlen} > 16` };
  // One copy of the whole packet, of which chaddr and every option value are views: `msg` may be a view of a
  // receive buffer that the next datagrams overwrite (a copy per option cost an allocation each).
  const buf = Buffer.from(msg);
  const options = new Map<number, Buffer>();
  const err = parseOptions(buf.subarray(240), options);
  if (err) return { ok: false, reason: err };
  let sname = buf.subarray(44, 108);
  let file = buf.subarray(108, 236);
  const overload = options.get(52)?.[0] ?? 0;
  // RFC 2132 §9.3: the file field holds options (1), sname does (2), or both (3); file first.
  if (overload & 1) { const e = parseOptions(file, options); if (e) return { ok: false, reason: `in file field: ${e}` }; file = Buffer.alloc(0); }
  if (overload & 2) { const e = parseOptions(sname, options); if (e) return { ok: false, reason: `in sname field: ${e}` }; sname = Buffer.alloc(0); }
  return {
    ok: true,
    packet: {
      op: buf[0]!, htype: buf[1]!, hlen, hops: buf[3]!, xid: buf.readUInt32BE(4), secs: buf.readUInt16BE(8), flags: buf.readUInt16BE(10),
      ciaddr: ip(buf, 12), yiaddr: ip(buf, 16), siaddr: ip(buf, 20), giaddr: ip(buf, 24), chaddr: buf.subarray(28, 44),
      sname: cstring(sname), file: cstring(file), options,
    },
  };
}

function putIpSlow(b: Buffer, o: number, a: string): void {
  const p = a.split('.').map(Number);
  for (let i = 0; i < 4; i++) b[o + i] = p[i] ?? 0;
}

function putIp(b: Buffer, o: number, a: string): void {
  // Dotted quad → 4 bytes without split/map (this runs four times per reply).
  let part = 0;
  let n = 0;
  for (let i = 0; i < a.length && part < 4; i++) {
    const c = a.charCodeAt(i);
    if (c === 0x2e) { b[o + part++] = n; n = 0; } else if (c >= 0x30 && c <= 0x39) n = n * 10 + (c - 0x30); else return putIpSlow(b, o, a);
  }
  if (part < 4) b[o + part++] = n;
  while (part < 4) b[o + part++] = 0;
}

/** Bytes encodeDhcp writes for this packet: options in the order given, long values split per RFC 3396, 300 at least. */
export function encodedSize(p: DhcpPacket, order?: number[]): number {
  const codes = order ?? [...p.options.keys()];
  let size = 240 + 1;
  for (const code of codes) {
    const v = p.options.get(code);
    if (v) size += v.length + 2 * Math.max(1, Math.ceil(v.length / 255));
  }
  return Math.max(300, size);
}

/**
 * Encode into `out` at `at` (encodedSize bytes, zeroed first: the buffer may be a reused send arena; `known`: that
 * size, when the caller has it already);
 * returns the length. Options in the order given, long values split per RFC 3396; padded to 300 bytes.
 */
export function encodeDhcpInto(p: DhcpPacket, order: number[] | undefined, out: Buffer, at0: number, known?: number): number {
  const codes = order ?? [...p.options.keys()];
  const size = known ?? encodedSize(p, codes);
  out.fill(0, at0, at0 + size);
  out[at0] = p.op; out[at0 + 1] = p.htype; out[at0 + 2] = p.hlen; out[at0 + 3] = p.hops;
  out.writeUInt32BE(p.xid >>> 0, at0 + 4); out.writeUInt16BE(p.secs, at0 + 8); out.writeUInt16BE(p.flags, at0 + 10);
  putIp(out, at0 + 12, p.ciaddr); putIp(out, at0 + 16, p.yiaddr); putIp(out, at0 + 20, p.siaddr); putIp(out, at0 + 24, p.giaddr);
  p.chaddr.copy(out, at0 + 28, 0, 16);
  if (p.sname) out.write(p.sname.slice(0, 63), at0 + 44, 'latin1');
  if (p.file) out.write(p.file.slice(0, 127), at0 + 108, 'latin1');
  out.writeUInt32BE(MAGIC, at0 + 236);
  let at = at0 + 240;
  for (const code of codes) {
    const v = p.options.get(code);
    if (!v) continue;
    for (let o = 0; o === 0 || o < v.length; o += 255) {
      const len = Math.min(255, v.length - o);
      out[at] = code; out[at + 1] = len;
      // Most values are a few bytes: a loop costs less than Buffer#copy's checks and native call.
      if (len <= 32) for (let k = 0; k < len; k++) out[at + 2 + k] = v[o + k]!;
      else v.copy(out, at + 2, o, o + len);
      at += 2 + len;
    }
  }
  out[at] = 255;
  return size;
}

/** Encode into a new buffer of its own (see encodeDhcpInto). */
export function encodeDhcp(p: DhcpPacket, order?: number[]): Buffer {
  const out = Buffer.allocUnsafe(encodedSize(p, order));
  encodeDhcpInto(p, order, out, 0);
  return out;
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

export function macOf(p: DhcpPacket): string {
  const n = Math.min(p.hlen, 16);
  let s = '';
  for (let i = 0; i < n; i++) s += (i ? ':' : '') + HEX[p.chaddr[i]!]!;
  return s;
}
