/** IPv4 helpers against their plain definitions (ipToInt reads a character at a time; inCidr keeps parsed CIDRs). */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { inCidr, ipToInt, isIPv4, parseCidr } from '../../../src/inventory/ip.js';

/** The definition: four dot-separated decimal parts 0-255 without leading zeros. */
function reference(ip: string): number | undefined {
  const parts = ip.split('.');
  if (parts.length !== 4) return undefined;
  let n = 0;
  for (const p of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return undefined;
    const v = Number(p);
    if (v > 255) return undefined;
    n = n * 256 + v;
  }
  return n;
}

const octet = fc.oneof(fc.nat({ max: 300 }).map(String), fc.constantFrom('', '00', '01', '007', '1000', '-1', '+1', ' 1', '1 ', 'a', '0x1', '1e2', '٣'));
const quadish = fc.oneof(
  fc.ipV4(),
  fc.array(octet, { minLength: 0, maxLength: 6 }).map((a) => a.join('.')),
  fc.string({ maxLength: 18 }),
  fc.tuple(fc.ipV4(), fc.string({ maxLength: 2 }), fc.nat()).map(([ip, s, at]) => { const i = at % (ip.length + 1); return ip.slice(0, i) + s + ip.slice(i); }),
);

describe('ipToInt', () => {
  it('reads exactly the dotted quads the definition reads', () => {
    for (const ip of ['0.0.0.0', '255.255.255.255', '10.0.1.2', '256.0.0.1', '1.2.3', '1.2.3.4.', '.1.2.3', '01.2.3.4', '1..2.3', '', '1.2.3.04', '1.2.3.255', '1.2.3.256', '999.1.1.1']) {
      expect(ipToInt(ip), ip).toBe(reference(ip));
    }
    fc.assert(fc.property(quadish, (ip) => { expect(ipToInt(ip), ip).toBe(reference(ip)); expect(isIPv4(ip)).toBe(reference(ip) !== undefined); }), { numRuns: 5000, seed: 15 });
  });
});

describe('inCidr', () => {
  it('is membership in the parsed network, asked again and again of the same CIDR', () => {
    const cidr = fc.tuple(fc.ipV4(), fc.nat({ max: 33 })).map(([ip, p]) => `${ip}/${p}`);
    fc.assert(fc.property(fc.ipV4(), fc.oneof(cidr, fc.constantFrom('10.0.0.0/24', '10.0.0.0/8', '0.0.0.0/0', 'x', '10.0.0.0/33')), (ip, c) => {
      const parsed = parseCidr(c);
      const n = reference(ip)!;
      const want = parsed !== undefined && n >= parsed.base && n < parsed.base + parsed.size;
      expect(inCidr(ip, c), `${ip} in ${c}`).toBe(want);
      expect(inCidr(ip, c), `${ip} in ${c} (again)`).toBe(want);
    }), { numRuns: 3000, seed: 15 });
    expect(inCidr('10.0.0.5', '10.0.0.0/24')).toBe(true);
    expect(inCidr('10.0.1.5', '10.0.0.0/24')).toBe(false);
    expect(inCidr('10.0.0.5', '10.0.0.1/24')).toBe(false); // host bits set: not a network
    expect(inCidr('10.0.0.256', '10.0.0.0/24')).toBe(false);
  });
});
