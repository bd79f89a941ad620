/** Reading and building the options PXE cares about (RFC 2132, 3004, 3046, 4578; iPXE's 175). */
import type { MachineFacts } from '../boot/facts.js';
import type { DhcpPacket } from './packet.js';

export const OPT = {
  MASK: 1, ROUTER: 3, DNS: 6, HOSTNAME: 12, DOMAIN: 15, REQUESTED_IP: 50, LEASE_TIME: 51, OVERLOAD: 52, MSG_TYPE: 53,
  SERVER_ID: 54, PARAMS: 55, MESSAGE: 56, MAX_SIZE: 57, RENEWAL: 58, REBINDING: 59, VENDOR_CLASS: 60, CLIENT_ID: 61,
  TFTP_SERVER: 66, BOOTFILE: 67, USER_CLASS: 77, RELAY_AGENT: 82, CLIENT_ARCH: 93, CLIENT_NDI: 94, UUID: 97, VENDOR: 43,
  IPXE: 175,
} as const;

export function ipBytes(a: string): Buffer {
  // Dotted quad → 4 bytes without split/map/from (several per reply). Anything but digits and dots
  // takes the general path, which keeps its old meaning for odd input (NaN → 0, any number of parts).
  if (!/^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(a)) return Buffer.from(a.split('.').map(Number));
  const b = Buffer.allocUnsafe(4);
  let part = 0;
  let n = 0;
  for (let i = 0; i < a.length; i++) {
    const c = a.charCodeAt(i);
    if (c === 0x2e) { b[part++] = n; n = 0; } else n = n * 10 + (c - 0x30);
  }
  b[part] = n;
  return b;
}

export function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

export function readIp(b: Buffer | undefined): string | undefined {
  return b && b.length >= 4 ? `${b[0]}.${b[1]}.${b[2]}.${b[3]}` : undefined;
}

/**
 * User class (77): RFC 3004 is a list of length-prefixed items; iPXE (and the QEMU ROM) send the plain
 * bytes "iPXE" instead (PXE-NOTES.md). Accept both.
 */
export function userClasses(b: Buffer | undefined): string[] {
  if (!b || b.length === 0) return [];
  const plain = b.toString('latin1');
  const items: string[] = [];
  let i = 0;
  while (i < b.length) {
    const len = b[i]!;
    if (len === 0 || i + 1 + len > b.length) return [plain];
    items.push(b.toString('latin1', i + 1, i + 1 + len));
    i += 1 + len;
  }
  return items;
}

/** Option 97: type 0 then 16 bytes of SMBIOS UUID, first three fields little-endian on the wire. */
export function uuidOf(b: Buffer | undefined): string | undefined {
  if (!b || b.length !== 17 || b[0] !== 0) return undefined;
  const u = b.subarray(1);
  if (u.every((x) => x === 0)) return undefined; // QEMU without -uuid sends zeros: no identity
  const le = (s: Buffer) => Buffer.from(s).reverse().toString('hex');
  const h = le(u.subarray(0, 4)) + le(u.subarray(4, 6)) + le(u.subarray(6, 8)) + u.subarray(8).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export function factsOf(p: DhcpPacket, mac: string, protocol: 'dhcp' | 'proxydhcp'): MachineFacts {
  const vendor = p.options.get(OPT.VENDOR_CLASS)?.toString('latin1');
  const arch = p.options.get(OPT.CLIENT_ARCH);
  const facts: MachineFacts = {
    mac, protocol,
    ipxe: userClasses(p.options.get(OPT.USER_CLASS)).includes('iPXE') || p.options.has(OPT.IPXE),
    pxe: vendor !== undefined && (vendor.startsWith('PXEClient') || vendor.startsWith('HTTPClient')),
  };
  if (vendor !== undefined) facts.vendorClass = vendor;
  // RFC 4578 §2.1: a list of 16-bit types; the first is the one the client runs.
  if (arch && arch.length >= 2) facts.arch = arch.readUInt16BE(0);
  const uuid = uuidOf(p.options.get(OPT.UUID));
  if (uuid) facts.uuid = uuid;
  return facts;
}
