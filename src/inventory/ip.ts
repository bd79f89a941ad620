/** IPv4 helpers for validation: dotted quads, CIDRs, membership. */
/**
 * A dotted quad as a number: four parts of 0-255 in decimal, no leading zeros (each part /^(0|[1-9][0-9]{0,2})$/).
 * Read a character at a time: it runs for every address of every machine at each load and render.
 */
export function ipToInt(ip: string): number | undefined {
  let n = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < ip.length; i++) {
    const c = ip.charCodeAt(i);
    if (c === 0x2e) {
      if (digits === 0 || part > 255 || ++dots > 3) return undefined;
      n = n * 256 + part;
      part = 0;
      digits = 0;
    } else if (c >= 0x30 && c <= 0x39) {
      if ((digits === 1 && part === 0) || ++digits > 3) return undefined;
      part = part * 10 + (c - 0x30);
    } else {
      return undefined;
    }
  }
  if (dots !== 3 || digits === 0 || part > 255) return undefined;
  return n * 256 + part;
}

export function isIPv4(ip: string): boolean {
  return ipToInt(ip) !== undefined;
}

export function parseCidr(cidr: string): { address: string; prefix: number; base: number; size: number } | undefined {
  const m = /^([0-9.]+)\/([0-9]{1,2})$/.exec(cidr);
  if (!m) return undefined;
  const ip = ipToInt(m[1]!);
  const prefix = Number(m[2]);
  if (ip === undefined || prefix > 32) return undefined;
  const size = 2 ** (32 - prefix);
  const base = Math.floor(ip / size) * size;
  if (base !== ip) return undefined; // host bits set: say the network address
  return { address: m[1]!, prefix, base, size };
}

// CIDRs as parsed, by text: a handful per site, asked about for every machine (validate, renderers, DHCP).
const cidrs = new Map<string, { base: number; size: number } | null>();

export function inCidr(ip: string, cidr: string): boolean {
  let c = cidrs.get(cidr);
  if (c === undefined) {
    if (cidrs.size >= 1024) cidrs.clear();
    const parsed = parseCidr(cidr);
    c = parsed ? { base: parsed.base, size: parsed.size } : null;
    cidrs.set(cidr, c);
  }
  const n = ipToInt(ip);
  return n !== undefined && c !== null && n >= c.base && n < c.base + c.size;
}

export function intToIp(n: number): string {
  return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');
}
