/** DHCP codec against packets captured from real clients (test/fixtures/dhcp, see README there). */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { decodeDhcp, encodeDhcp, macOf, type DhcpPacket } from '../../../src/dhcp/packet.js';
import { factsOf, userClasses, uuidOf } from '../../../src/dhcp/options.js';
import { buildReply } from '../../../src/dhcp/reply.js';
import { planBoot } from '../../../src/boot/plan.js';
import { loadInventory } from '../../../src/inventory/index.js';

const FIX = resolve(import.meta.dirname, '../../fixtures/dhcp');
const load = (n: string): DhcpPacket => {
  const d = decodeDhcp(readFileSync(join(FIX, n)));
  if (!d.ok) throw new Error(d.reason);
  return d.packet;
};
const inv = await loadInventory(resolve(import.meta.dirname, '../../fixtures/profiles'));
const ctx = { baseUrl: 'http://10.0.0.1:8080' };

describe('decoding real captures', () => {
  it('QEMU SeaBIOS NIC ROM (iPXE 2019): BIOS, plain "iPXE" user class, option 175, UUID', () => {
    const p = load('ipxe-rom-bios-discover.bin');
    expect(macOf(p)).toBe('52:54:00:00:02:01');
    expect(p.options.get(53)).toEqual(Buffer.from([1]));
    expect(factsOf(p, macOf(p), 'dhcp')).toEqual({
      mac: '52:54:00:00:02:01', protocol: 'dhcp', arch: 0, ipxe: true, pxe: true,
      vendorClass: 'PXEClient:Arch:00000:UNDI:002001', uuid: '01020304-0506-0708-090a-0b0c0d0e0f10',
    });
  });

  it('OVMF native UEFI PXE: arch 7, PXEClient UNDI 003000, broadcast flag set, no iPXE', () => {
    const p = load('ovmf-uefi-discover.bin');
    expect(p.flags & 0x8000).toBe(0x8000);
    expect(factsOf(p, macOf(p), 'dhcp')).toMatchObject({ arch: 7, ipxe: false, pxe: true, vendorClass: 'PXEClient:Arch:00007:UNDI:003000', uuid: '01020304-0506-0708-090a-0b0c0d0e0f10' });
    const plan = planBoot(factsOf(p, macOf(p), 'dhcp'), inv, ctx);
    expect(plan.action === 'boot' && plan.bootfile).toEqual({ kind: 'tftp', file: 'snponly.efi' });
  });

  it('busybox udhcpc sent as a PXE client: arch 0, not iPXE', () => {
    const p = load('udhcpc-pxe-bios-discover.bin');
    expect(factsOf(p, macOf(p), 'dhcp')).toMatchObject({ arch: 0, ipxe: false, pxe: true, vendorClass: 'PXEClient:Arch:00000:UNDI:002001' });
  });

  it('ISC dhclient: no PXE, no arch', () => {
    const p = load('dhclient-discover.bin');
    const f = factsOf(p, macOf(p), 'dhcp');
    expect(f.pxe).toBe(false);
    expect(f.arch).toBeUndefined();
  });

  it.each(['ovmf-uefi-discover.bin', 'ipxe-rom-bios-discover.bin', 'udhcpc-pxe-bios-discover.bin', 'dhclient-discover.bin'])('%s round-trips through encode', (n) => {
    const p = load(n);
    const again = decodeDhcp(encodeDhcp(p));
    expect(again.ok && again.packet).toEqual(p);
  });
});

describe('options', () => {
  it('user class: RFC 3004 length-prefixed and iPXE plain form', () => {
    expect(userClasses(Buffer.from('iPXE'))).toEqual(['iPXE']);
    expect(userClasses(Buffer.from([4, ...Buffer.from('iPXE'), 3, ...Buffer.from('abc')]))).toEqual(['iPXE', 'abc']);
  });
  it('option 97: first three UUID fields are little-endian on the wire; all zeros is no UUID', () => {
    expect(uuidOf(Buffer.from('000403020106050807090a0b0c0d0e0f10', 'hex'))).toBe('01020304-0506-0708-090a-0b0c0d0e0f10');
    expect(uuidOf(Buffer.alloc(17))).toBeUndefined();
  });
  it('option overload (52) pulls options out of the file and sname fields', () => {
    const p = load('dhclient-discover.bin');
    const buf = Buffer.from(encodeDhcp({ ...p, options: new Map([[53, Buffer.from([1])], [52, Buffer.from([3])]]) }));
    Buffer.from([60, 3, 0x61, 0x62, 0x63, 255]).copy(buf, 108); // file
    Buffer.from([12, 2, 0x68, 0x31, 255]).copy(buf, 44); // sname
    const d = decodeDhcp(buf);
    expect(d.ok && d.packet.options.get(60)?.toString()).toBe('abc');
    expect(d.ok && d.packet.options.get(12)?.toString()).toBe('h1');
    expect(d.ok && d.packet.file).toBe('');
  });
  it('long values are split and re-joined (RFC 3396)', () => {
    const p = load('dhclient-discover.bin');
    const long = Buffer.alloc(600, 7);
    const d = decodeDhcp(encodeDhcp({ ...p, options: new Map([[53, Buffer.from([1])], [43, long]]) }));
    expect(d.ok && d.packet.options.get(43)).toEqual(long);
  });
});

describe('malformed input never throws', () => {
  const base = readFileSync(join(FIX, 'dhclient-discover.bin'));
  it.each([
    ['empty', Buffer.alloc(0), /too short/],
    ['header only', base.subarray(0, 236), /too short/],
    ['no magic', Buffer.concat([base.subarray(0, 236), Buffer.alloc(4), Buffer.from([255])]), /magic/],
    ['option runs past the end', Buffer.concat([base.subarray(0, 240), Buffer.from([60, 50, 1, 2])]), /runs past the packet/],
    ['option without length', Buffer.concat([base.subarray(0, 240), Buffer.from([60])]), /has no length/],
    ['hlen 200', Buffer.concat([base.subarray(0, 2), Buffer.from([200]), base.subarray(3)]), /hardware address length/],
  ])('%s', (_n, buf, reason) => {
    const d = decodeDhcp(buf);
    expect(d.ok).toBe(false);
    expect(!d.ok && d.reason).toMatch(reason);
  });

  it('fuzz: random bytes and random option areas', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 700 }), (b) => { decodeDhcp(Buffer.from(b)); }), { numRuns: 3000 });
    fc.assert(fc.property(fc.uint8Array({ maxLength: 400 }), (b) => {
      const d = decodeDhcp(Buffer.concat([base.subarray(0, 240), Buffer.from(b)]));
      if (d.ok) factsOf(d.packet, macOf(d.packet), 'dhcp');
    }), { numRuns: 3000 });
  });
});

describe('replies', () => {
  it('BIOS PXE: siaddr + file and options 66/67, PXEClient and discovery control 8', () => {
    const req = load('udhcpc-pxe-bios-discover.bin');
    const facts = factsOf(req, '52:54:00:00:02:01', 'dhcp');
    const plan = planBoot(facts, inv, ctx);
    const { packet, order } = buildReply({ req, type: 2, serverId: '10.0.0.1', yiaddr: '10.0.0.101', leaseTime: 3600, network: inv.networks[0], plan, facts });
    const d = decodeDhcp(encodeDhcp(packet, order));
    expect(d.ok).toBe(true);
    const p = d.ok ? d.packet : packet;
    expect([p.yiaddr, p.siaddr, p.file]).toEqual(['10.0.0.101', '10.0.0.1', 'undionly.kpxe']);
    expect(p.options.get(67)?.toString()).toBe('undionly.kpxe');
    expect(p.options.get(66)?.toString()).toBe('10.0.0.1');
    expect(p.options.get(60)?.toString()).toBe('PXEClient');
    expect(p.options.get(43)).toEqual(Buffer.from([6, 1, 8, 255]));
    expect(p.options.get(1)).toEqual(Buffer.from([255, 255, 255, 0]));
    expect(p.options.get(51)?.readUInt32BE(0)).toBe(3600);
  });

  it('iPXE gets the script URL and 175.176 = 1', () => {
    const req = load('ipxe-rom-bios-discover.bin');
    const facts = factsOf(req, macOf(req), 'dhcp');
    const plan = planBoot(facts, inv, ctx);
    const { packet } = buildReply({ req, type: 2, serverId: '10.0.0.1', yiaddr: '10.0.0.101', plan, facts, ipxeNoProxyWait: true });
    expect(packet.options.get(67)?.toString()).toBe('http://10.0.0.1:8080/boot/52:54:00:00:02:01.ipxe?arch=0');
    expect(packet.options.get(175)).toEqual(Buffer.from([176, 1, 1]));
  });

  it('UEFI HTTP boot (arch 16) gets an http URL and vendor class HTTPClient', () => {
    const req = load('udhcpc-pxe-bios-discover.bin');
    const facts = { mac: '52:54:00:00:02:01', protocol: 'dhcp', arch: 16, ipxe: false, pxe: true, vendorClass: 'HTTPClient:Arch:00016' } as const;
    const plan = planBoot(facts, inv, ctx);
    const { packet } = buildReply({ req, type: 2, serverId: '10.0.0.1', yiaddr: '10.0.0.101', plan, facts });
    expect(packet.options.get(67)?.toString()).toBe('http://10.0.0.1:8080/loaders/ipxe.efi');
    expect(packet.options.get(60)?.toString()).toBe('HTTPClient');
  });

  it('relayed requests: giaddr kept and option 82 echoed last (RFC 3046)', () => {
    const req = { ...load('dhclient-discover.bin'), giaddr: '10.0.1.1' };
    req.options = new Map(req.options).set(82, Buffer.from('0104deadbeef', 'hex'));
    const { packet, order } = buildReply({ req, type: 2, serverId: '10.0.0.1', yiaddr: '10.0.1.50', facts: factsOf(req, macOf(req), 'dhcp') });
    expect(packet.giaddr).toBe('10.0.1.1');
    expect(order.at(-1)).toBe(82);
    expect(packet.options.get(82)).toEqual(Buffer.from('0104deadbeef', 'hex'));
  });
});
