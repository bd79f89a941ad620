/**
 * TFTP packets (RFC 1350) with option extension (RFC 2347). Pure: bytes in, values out; a malformed
 * packet decodes to an error value, never an exception.
 */
export const OP = { RRQ: 1, WRQ: 2, DATA: 3, ACK: 4, ERROR: 5, OACK: 6 } as const;

/** RFC 1350 §5 error codes, plus 8 (RFC 2347: option negotiation refused). */
export const ERR = {
  NOT_DEFINED: 0, NOT_FOUND: 1, ACCESS: 2, DISK_FULL: 3, ILLEGAL_OP: 4, UNKNOWN_TID: 5, EXISTS: 6, NO_USER: 7, OPTIONS: 8,
} as const;

export type Packet =
  | { op: 'RRQ' | 'WRQ'; filename: string; mode: string; options: Record<string, string> }
  | { op: 'DATA'; block: number; data: Buffer }
  | { op: 'ACK'; block: number }
  | { op: 'ERROR'; code: number; message: string }
  | { op: 'OACK'; options: Record<string, string> };

export type Decoded = Packet | { op: 'INVALID'; reason: string };

function invalid(reason: string): Decoded {
  return { op: 'INVALID', reason };
}

/** NUL-terminated strings from offset; undefined when the last one is unterminated. */
function strings(buf: Buffer, from: number): string[] | undefined {
  const out: string[] = [];
  let start = from;
  while (start < buf.length) {
    const end = buf.indexOf(0, start);
    if (end < 0) return undefined;
    // Netascii and octet names are ASCII; latin1 keeps every byte so odd names fail lookup, not decoding.
    out.push(buf.toString('latin1', start, end));
    start = end + 1;
  }
  return out;
}

function decodeRequest(op: 'RRQ' | 'WRQ', buf: Buffer): Decoded {
  const parts = strings(buf, 2);
  if (!parts) return invalid('request strings are not NUL-terminated');
  const [filename, mode, ...rest] = parts;
  if (!filename) return invalid('empty file name');
  if (mode === undefined) return invalid('missing mode');
  const m = mode.toLowerCase();
  if (m !== 'octet' && m !== 'netascii' && m !== 'mail') return invalid(`unknown mode "${mode}"`);
  if (rest.length % 2 !== 0) return invalid('option without a value');
  const options: Record<string, string> = {};
  for (let i = 0; i < rest.length; i += 2) {
    const key = rest[i]!.toLowerCase();
    // RFC 2347: option names are case-insensitive; a repeated option keeps its first value.
    if (key && !(key in options)) options[key] = rest[i + 1]!;
  }
  return { op, filename, mode: m, options };
}

export function decode(buf: Buffer): Decoded {
  if (buf.length < 2) return invalid('shorter than an opcode');
  const op = buf.readUInt16BE(0);
  switch (op) {
    case OP.RRQ: return decodeRequest('RRQ', buf);
    case OP.WRQ: return decodeRequest('WRQ', buf);
    case OP.DATA:
      if (buf.length < 4) return invalid('DATA without a block number');
      return { op: 'DATA', block: buf.readUInt16BE(2), data: buf.subarray(4) };
    case OP.ACK:
      if (buf.length < 4) return invalid('ACK without a block number');
      return { op: 'ACK', block: buf.readUInt16BE(2) };
    case OP.ERROR: {
      if (buf.length < 4) return invalid('ERROR without a code');
      const end = buf.indexOf(0, 4);
      return { op: 'ERROR', code: buf.readUInt16BE(2), message: buf.toString('latin1', 4, end < 0 ? buf.length : end) };
    }
    case OP.OACK: {
      const parts = strings(buf, 2);
      if (!parts || parts.length % 2 !== 0) return invalid('malformed OACK');
      const options: Record<string, string> = {};
      for (let i = 0; i < parts.length; i += 2) options[parts[i]!.toLowerCase()] = parts[i + 1]!;
      return { op: 'OACK', options };
    }
    default:
      return invalid(`unknown opcode ${op}`);
  }
}

function header(op: number, n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt16BE(op, 0);
  b.writeUInt16BE(n & 0xffff, 2);
  return b;
}

export function encodeData(block: number, data: Buffer): Buffer {
  return Buffer.concat(dataPacket(block, data));
}

/**
 * A DATA packet as a gather list (header, payload) for sendmsg: the payload is not copied. This runs
 * once per block sent, where copying 1468 bytes into a fresh buffer was the largest cost.
 */
export function dataPacket(block: number, data: Buffer): Buffer[] {
  const h = Buffer.allocUnsafe(4);
  h[0] = 0;
  h[1] = OP.DATA;
  h.writeUInt16BE(block & 0xffff, 2);
  return data.length ? [h, data] : [h];
}

export function encodeAck(block: number): Buffer {
  return header(OP.ACK, block);
}

export function encodeError(code: number, message: string): Buffer {
  return Buffer.concat([header(OP.ERROR, code), Buffer.from(`${message}\0`, 'latin1')]);
}

export function encodeOack(options: Record<string, string>): Buffer {
  const parts = Object.entries(options).flatMap(([k, v]) => [k, v]);
  return Buffer.concat([Buffer.from([0, OP.OACK]), ...parts.map((p) => Buffer.from(`${p}\0`, 'latin1'))]);
}

export function encodeRequest(op: 'RRQ' | 'WRQ', filename: string, mode: string, options: Record<string, string> = {}): Buffer {
  const parts = [filename, mode, ...Object.entries(options).flatMap(([k, v]) => [k, v])];
  return Buffer.concat([Buffer.from([0, op === 'RRQ' ? OP.RRQ : OP.WRQ]), ...parts.map((p) => Buffer.from(`${p}\0`, 'latin1'))]);
}
