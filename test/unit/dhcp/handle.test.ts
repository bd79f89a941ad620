/**
 * handleDhcp and replyDestination as tables, without sockets: each row is a request, the lease store's
 * contents, and the whole answer expected (reply type and address, lease change, events).
 */
import { describe, expect, it } from 'vitest';
import { handleDhcp, type DhcpContext, type LeaseReader } from '../../../src/dhcp/handle.js';
import { replyDestination } from '../../../src/dhcp/destination.js';
import { MSG, type DhcpPacket } from '../../../src/dhcp/packet.js';
import { OPT } from '../../../src/dhcp/options.js';
import { ipToInt } from '../../../src/inventory/ip.js';
import type { LeaseRecord } from '../../../src/state/types.js';
import type { Inventory, Network } from '../../../src/inventory/types.js';
import { inventory, machine, role } from '../boot/fixture.js';

const NOW = Date.parse('2026-12-02T00:00:00Z');
const later = (s: number) => new Date(NOW + s * 1000).toISOString();
const PROV: Network = { name: 'prov', cidr: '10.0.0.0/24', address: '10.0.0.0', prefix: 24, gateway: '10.0.0.254', dns: [], pool: { start: '10.0.0.200', end: '10.0.0.203' } };
const OTHER: Network = { name: 'lab2', cidr: '10.0.1.0/24', address: '10.0.1.0', prefix: 24, dns: [] };
const W1 = '52:54:00:00:02:01';
const NEW = '52:54:00:aa:00:01';
const NEW2 = '52:54:00:aa:00:02';

function inv(policy: 'ignore' | 'boot' = 'boot'): Inventory {
  const base = inventory([machine('w1', W1, 'web', { ip: '10.0.0.101' })], [role('web'), role('rescue', { kind: 'maintenance' })],
    { unknown: policy === 'boot' ? { policy, target: 'rescue' } : { policy } });
  return { ...base, networks: [PROV, OTHER] };
}

/** The lease store as the handler reads it: plain data (the real store is tested in leases.test.ts). */
function leases(records: LeaseRecord[] = [], o: { hint?: number; canAllocate?: boolean } = {}): LeaseReader {
  const live = (r: LeaseRecord) => Date.parse(r.expiresAt) > NOW;
  return {
    byMacLive: (mac) => records.find((r) => r.mac === mac && live(r)),
    holder: (ip) => records.find((r) => r.ip === ip && live(r) && r.state !== 'released'),
    lastOf: (mac) => records.find((r) => r.mac === mac),
    poolHint: () => o.hint,
    canAllocate: () => o.canAllocate ?? true,
  };
}

interface Req { type: number; mac?: string; pxe?: boolean; ipxe?: boolean; requested?: string; serverId?: string; ciaddr?: string; giaddr?: string; htype?: number; hlen?: number; op?: number }

function packet(r: Req): DhcpPacket {
  const options = new Map<number, Buffer>([[OPT.MSG_TYPE, Buffer.from([r.type])]]);
  if (r.pxe) { options.set(OPT.VENDOR_CLASS, Buffer.from('PXEClient:Arch:00000:UNDI:002001')); options.set(OPT.CLIENT_ARCH, Buffer.from([0, 0])); }
  if (r.ipxe) options.set(OPT.USER_CLASS, Buffer.from('iPXE'));
  const ip = (a: string) => Buffer.from(a.split('.').map(Number));
  if (r.requested) options.set(OPT.REQUESTED_IP, ip(r.requested));
  if (r.serverId) options.set(OPT.SERVER_ID, ip(r.serverId));
  const chaddr = Buffer.alloc(16);
  Buffer.from((r.mac ?? W1).replace(/:/g, ''), 'hex').copy(chaddr);
  return {
    op: r.op ?? 1, htype: r.htype ?? 1, hlen: r.hlen ?? 6, hops: 0, xid: 0x1234, secs: 0, flags: 0,
    ciaddr: r.ciaddr ?? '0.0.0.0', yiaddr: '0.0.0.0', siaddr: '0.0.0.0', giaddr: r.giaddr ?? '0.0.0.0', chaddr, sname: '', file: '', options,
  };
}

function ctx(o: Partial<DhcpContext> & { records?: LeaseRecord[]; hint?: number; canAllocate?: boolean } = {}): DhcpContext {
  return {
    inv: o.inv ?? inv(), leases: o.leases ?? leases(o.records, { ...(o.hint !== undefined ? { hint: o.hint } : {}), ...(o.canAllocate !== undefined ? { canAllocate: o.canAllocate } : {}) }),
    config: { mode: 'authoritative', leaseTime: 3600, serveNonPxe: true, ipxeNoProxyWait: true, ...o.config },
    serverId: '10.0.0.1', baseUrl: 'http://10.0.0.1:8080', now: NOW, viaProxyPort: o.viaProxyPort ?? false,
  };
}

/** The answer in one comparable line: reply type and address, lease change, event stages. */
function summary(req: Req, c: DhcpContext) {
  const a = handleDhcp(packet(req), c);
  const type = a.reply?.packet.options.get(OPT.MSG_TYPE)?.[0];
  return {
    reply: type === undefined ? null : `${({ 2: 'OFFER', 5: 'ACK', 6: 'NAK' } as Record<number, string>)[type]} ${a.reply!.packet.yiaddr}`,
    lease: a.lease ? `${a.lease.record.state} ${a.lease.record.mac} ${a.lease.record.ip}${a.lease.network ? ` @${a.lease.network}` : ''}` : null,
    events: a.events.map((e) => e.stage).join(' '),
  };
}

describe('handleDhcp: authoritative', () => {
  const offered = (mac: string, ip: string): LeaseRecord => ({ mac, ip, state: 'offered', expiresAt: later(60) });
  const bound = (mac: string, ip: string): LeaseRecord => ({ mac, ip, state: 'bound', expiresAt: later(3600) });
  const rows: Array<[string, Req, DhcpContext, ReturnType<typeof summary>]> = [
    ['reserved PXE DISCOVER: its address, nothing stored', { type: MSG.DISCOVER, pxe: true }, ctx(),
      { reply: 'OFFER 10.0.0.101', lease: null, events: 'dhcp-discover dhcp-offer' }],
    ['unknown PXE DISCOVER, policy ignore: silence', { type: MSG.DISCOVER, mac: NEW, pxe: true }, ctx({ inv: inv('ignore') }),
      { reply: null, lease: null, events: 'dhcp-discover dhcp-ignore' }],
    ['unknown PXE DISCOVER, policy boot: first pool address, offered and stored', { type: MSG.DISCOVER, mac: NEW, pxe: true }, ctx(),
      { reply: 'OFFER 10.0.0.200', lease: `offered ${NEW} 10.0.0.200 @prov`, events: 'dhcp-discover dhcp-offer' }],
    ['unknown non-PXE DISCOVER (the initramfs) after its PXE lease: the same address', { type: MSG.DISCOVER, mac: NEW }, ctx({ records: [bound(NEW, '10.0.0.202')] }),
      { reply: 'OFFER 10.0.0.202', lease: `offered ${NEW} 10.0.0.202 @prov`, events: 'dhcp-discover dhcp-offer' }],
    ['unknown non-PXE DISCOVER with serveNonPxe off: silence', { type: MSG.DISCOVER, mac: NEW }, ctx({ config: { mode: 'authoritative', leaseTime: 3600, serveNonPxe: false, ipxeNoProxyWait: true } }),
      { reply: null, lease: null, events: 'dhcp-discover dhcp-ignore' }],
    ['shared store unreachable: no pool allocation', { type: MSG.DISCOVER, mac: NEW, pxe: true }, ctx({ canAllocate: false }),
      { reply: null, lease: null, events: 'dhcp-discover dhcp-ignore' }],
    ['reserved machine still served while the shared store is unreachable', { type: MSG.DISCOVER, pxe: true }, ctx({ canAllocate: false }),
      { reply: 'OFFER 10.0.0.101', lease: null, events: 'dhcp-discover dhcp-offer' }],
    ['pool skips addresses held by others and starts at the hint', { type: MSG.DISCOVER, mac: NEW, pxe: true }, ctx({ hint: ipToInt('10.0.0.201')!, records: [offered(NEW2, '10.0.0.201')] }),
      { reply: 'OFFER 10.0.0.202', lease: `offered ${NEW} 10.0.0.202 @prov`, events: 'dhcp-discover dhcp-offer' }],
    ['pool full: silence', { type: MSG.DISCOVER, mac: NEW, pxe: true }, ctx({ records: ['200', '201', '202', '203'].map((n, i) => bound(`52:54:00:bb:00:0${i}`, `10.0.0.${n}`)) }),
      { reply: null, lease: null, events: 'dhcp-discover dhcp-ignore' }],
    ['REQUEST of the reserved address: ACK, bound and stored', { type: MSG.REQUEST, pxe: true, requested: '10.0.0.101', serverId: '10.0.0.1' }, ctx(),
      { reply: 'ACK 10.0.0.101', lease: `bound ${W1} 10.0.0.101 @prov`, events: 'dhcp-request dhcp-ack' }],
    ['REQUEST of another address on our network: NAK', { type: MSG.REQUEST, requested: '10.0.0.77' }, ctx(),
      { reply: 'NAK 0.0.0.0', lease: null, events: 'dhcp-request dhcp-nak' }],
    ['REQUEST of an address on no network of ours: silence (another server\'s client)', { type: MSG.REQUEST, requested: '192.168.9.9' }, ctx(),
      { reply: null, lease: null, events: 'dhcp-request' }],
    ['REQUEST selecting another server: our offer released, no reply', { type: MSG.REQUEST, mac: NEW, requested: '10.0.0.200', serverId: '10.0.0.9' }, ctx({ records: [offered(NEW, '10.0.0.200')] }),
      { reply: null, lease: `released ${NEW} 10.0.0.200`, events: 'dhcp-request' }],
    ['REQUEST of a pool address another MAC holds: NAK', { type: MSG.REQUEST, mac: NEW, pxe: true, requested: '10.0.0.200' }, ctx({ leases: { ...leases([bound(NEW2, '10.0.0.200')]), lastOf: () => ({ mac: NEW, ip: '10.0.0.200', state: 'bound', expiresAt: later(-1) }) } }),
      { reply: 'NAK 0.0.0.0', lease: null, events: 'dhcp-request dhcp-nak' }],
    ['REQUEST of a reserved address still leased to another MAC (reservation added later): NAK, never two holders', { type: MSG.REQUEST, pxe: true, requested: '10.0.0.101' }, ctx({ records: [bound(NEW2, '10.0.0.101')] }),
      { reply: 'NAK 0.0.0.0', lease: null, events: 'dhcp-request dhcp-nak' }],
    ['DECLINE from a MAC that does not hold the address: ignored', { type: MSG.DECLINE, mac: NEW2, requested: '10.0.0.200' }, ctx({ records: [bound(NEW, '10.0.0.200')] }),
      { reply: null, lease: null, events: 'dhcp-decline' }],
    ['DECLINE of a reserved address by another MAC: ignored', { type: MSG.DECLINE, mac: NEW, requested: '10.0.0.101' }, ctx(),
      { reply: null, lease: null, events: 'dhcp-decline' }],
    ['DECLINE by the reserved machine itself: logged, its address stays its own', { type: MSG.DECLINE, requested: '10.0.0.101' }, ctx(),
      { reply: null, lease: null, events: 'dhcp-decline' }],
    ['DECLINE from the holder of a pool address: held back', { type: MSG.DECLINE, mac: NEW, requested: '10.0.0.200' }, ctx({ records: [bound(NEW, '10.0.0.200')] }),
      { reply: null, lease: `declined ${NEW} 10.0.0.200`, events: 'dhcp-decline' }],
    ['RELEASE by a MAC that does not hold ciaddr: ignored', { type: MSG.RELEASE, mac: NEW2, ciaddr: '10.0.0.200' }, ctx({ records: [bound(NEW, '10.0.0.200')] }),
      { reply: null, lease: null, events: 'dhcp-release' }],
    ['RELEASE by the holder: released', { type: MSG.RELEASE, mac: NEW, ciaddr: '10.0.0.200' }, ctx({ records: [bound(NEW, '10.0.0.200')] }),
      { reply: null, lease: `released ${NEW} 10.0.0.200`, events: 'dhcp-release' }],
    ['INFORM: an ACK without an address', { type: MSG.INFORM, ciaddr: '10.0.0.101' }, ctx(),
      { reply: 'ACK 0.0.0.0', lease: null, events: 'dhcp-inform' }],
    ['hlen 0 (an empty "MAC"): dropped', { type: MSG.DISCOVER, pxe: true, hlen: 0 }, ctx(), { reply: null, lease: null, events: '' }],
    ['hlen 1: dropped', { type: MSG.DISCOVER, mac: NEW, pxe: true, hlen: 1 }, ctx(), { reply: null, lease: null, events: '' }],
    ['not Ethernet (htype 6): dropped', { type: MSG.DISCOVER, pxe: true, htype: 6 }, ctx(), { reply: null, lease: null, events: '' }],
    ['a reply (op 2): dropped', { type: MSG.OFFER, op: 2 }, ctx(), { reply: null, lease: null, events: '' }],
    ['relayed from a network we serve: answered', { type: MSG.DISCOVER, pxe: true, giaddr: '10.0.1.1' }, ctx(),
      { reply: 'OFFER 10.0.0.101', lease: null, events: 'dhcp-discover dhcp-offer' }],
    ['relayed from a network we do not serve: dropped', { type: MSG.DISCOVER, pxe: true, giaddr: '172.16.5.1' }, ctx(), { reply: null, lease: null, events: '' }],
  ];
  it.each(rows)('%s', (_name, req, c, want) => {
    expect(summary(req, c)).toEqual(want);
  });

  it('boot fields follow the plan: PXE gets the loader, iPXE the script URL; a non-PXE client gets no boot fields', () => {
    const pxe = handleDhcp(packet({ type: MSG.DISCOVER, pxe: true }), ctx()).reply!.packet;
    expect([pxe.siaddr, pxe.file, pxe.options.get(OPT.BOOTFILE)?.toString()]).toEqual(['10.0.0.1', 'undionly.kpxe', 'undionly.kpxe']);
    const ipxe = handleDhcp(packet({ type: MSG.DISCOVER, pxe: true, ipxe: true }), ctx()).reply!.packet;
    expect(ipxe.options.get(OPT.BOOTFILE)?.toString()).toBe(`http://10.0.0.1:8080/boot/${W1}.ipxe?arch=0`);
    expect(ipxe.options.get(OPT.IPXE)).toEqual(Buffer.from([176, 1, 1]));
    const plain = handleDhcp(packet({ type: MSG.DISCOVER }), ctx()).reply!.packet;
    expect([plain.file, plain.options.has(OPT.BOOTFILE)]).toEqual(['', false]);
  });

  it('a NAK through a relay carries the broadcast bit (RFC 2131 §4.1)', () => {
    const nak = handleDhcp(packet({ type: MSG.REQUEST, requested: '10.0.0.77', giaddr: '10.0.1.1' }), ctx()).reply!.packet;
    expect(nak.flags & 0x8000).toBe(0x8000);
    expect(handleDhcp(packet({ type: MSG.REQUEST, requested: '10.0.0.77' }), ctx()).reply!.packet.flags & 0x8000).toBe(0);
  });

  it('lease times come from the config and the clock passed in', () => {
    const a = handleDhcp(packet({ type: MSG.REQUEST, pxe: true, requested: '10.0.0.101' }), ctx({ config: { mode: 'authoritative', leaseTime: 120, serveNonPxe: true, ipxeNoProxyWait: true } }));
    expect(a.lease!.record.expiresAt).toBe(later(120));
    expect(a.reply!.packet.options.get(OPT.LEASE_TIME)!.readUInt32BE(0)).toBe(120);
  });
});

describe('handleDhcp: proxyDHCP', () => {
  const proxy = (viaProxyPort = false) => ctx({ viaProxyPort, config: { mode: 'proxy', leaseTime: 3600, serveNonPxe: true, ipxeNoProxyWait: true } });
  it.each([
    ['PXE DISCOVER on 67: boot file only, no address, no lease', { type: MSG.DISCOVER, pxe: true }, proxy(), { reply: 'OFFER 0.0.0.0', lease: null, events: 'dhcp-discover dhcp-offer' }],
    ['non-PXE DISCOVER: not ours (the real DHCP server answers)', { type: MSG.DISCOVER }, proxy(), { reply: null, lease: null, events: '' }],
    ['REQUEST on 4011: ACK with the boot file', { type: MSG.REQUEST, pxe: true }, proxy(true), { reply: 'ACK 0.0.0.0', lease: null, events: 'dhcp-ack' }],
    ['DISCOVER on 4011: nothing (PXE spec: only REQUESTs there)', { type: MSG.DISCOVER, pxe: true }, proxy(true), { reply: null, lease: null, events: '' }],
  ] as Array<[string, Req, DhcpContext, ReturnType<typeof summary>]>)('%s', (_n, req, c, want) => {
    expect(summary(req, c)).toEqual(want);
  });
});

describe('replyDestination (RFC 2131 §4.1)', () => {
  const base = { source: { address: '10.0.0.77', port: 4011 }, directedBroadcast: '10.0.0.255' };
  const z = '0.0.0.0';
  it.each([
    ['relayed: to the relay, port 67', { giaddr: '10.0.1.1', ciaddr: z }, MSG.OFFER, false, true, { address: '10.0.1.1', port: 67, viaOwnAddress: true }],
    ['relayed NAK: to the relay too', { giaddr: '10.0.1.1', ciaddr: '10.0.0.5' }, MSG.NAK, false, true, { address: '10.0.1.1', port: 67, viaOwnAddress: true }],
    ['proxyDHCP port: back to the sender', { giaddr: z, ciaddr: '10.0.0.77' }, MSG.ACK, true, true, { address: '10.0.0.77', port: 4011, viaOwnAddress: false }],
    ['renewing (ciaddr set): unicast to ciaddr', { giaddr: z, ciaddr: '10.0.0.5' }, MSG.ACK, false, true, { address: '10.0.0.5', port: 68, viaOwnAddress: true }],
    ['NAK to a client with ciaddr: broadcast', { giaddr: z, ciaddr: '10.0.0.5' }, MSG.NAK, false, true, { address: '255.255.255.255', port: 68, viaOwnAddress: true }],
    ['new client: limited broadcast through our own address (OVMF)', { giaddr: z, ciaddr: z }, MSG.OFFER, false, true, { address: '255.255.255.255', port: 68, viaOwnAddress: true }],
    ['new client, no socket on our address: the directed broadcast', { giaddr: z, ciaddr: z }, MSG.OFFER, false, false, { address: '10.0.0.255', port: 68, viaOwnAddress: false }],
  ] as const)('%s', (_n, req, replyType, viaProxyPort, boundToOwnAddress, want) => {
    expect(replyDestination({ ...base, req, replyType, viaProxyPort, boundToOwnAddress })).toEqual(want);
  });
});

describe('replyDestination: unicast to yiaddr when the broadcast bit is clear (RFC 2131 §4.1)', () => {
  const z = '0.0.0.0';
  const mac = Buffer.from('525400000201', 'hex');
  const eth = { giaddr: z, ciaddr: z, flags: 0, htype: 1, hlen: 6, chaddr: Buffer.concat([mac, Buffer.alloc(10)]) };
  const base = { source: { address: z, port: 68 }, directedBroadcast: '10.0.0.255', viaProxyPort: false, boundToOwnAddress: true, yiaddr: '10.0.0.101' };
  const net = { address: '10.0.0.1', prefix: 24 };
  const bcast = { address: '255.255.255.255', port: 68, viaOwnAddress: true };
  const uni = { address: '10.0.0.101', port: 68, viaOwnAddress: true, neighbour: { ip: '10.0.0.101', mac: '52:54:00:00:02:01' } };
  it.each([
    ['bit clear (iPXE, SeaBIOS ROM, udhcpc, dhclient): unicast after the ARP entry', {}, MSG.OFFER, net, uni],
    ['ACK, bit clear: unicast too', {}, MSG.ACK, net, uni],
    ['broadcast bit set (OVMF PXE): limited broadcast', { flags: 0x8000 }, MSG.OFFER, net, bcast],
    ['NAK: always broadcast (the client may hold a wrong address)', {}, MSG.NAK, net, bcast],
    ['no neighbour table (no CAP_NET_ADMIN, no addon, unicastReplies off): broadcast', {}, MSG.OFFER, undefined, bcast],
    ['not Ethernet (htype 6): broadcast, chaddr is no MAC for ARP', { htype: 6 }, MSG.OFFER, net, bcast],
    ['hlen not 6: broadcast', { hlen: 8 }, MSG.OFFER, net, bcast],
    ['yiaddr outside the arrival link: broadcast', {}, MSG.OFFER, { address: '10.9.0.1', prefix: 24 }, bcast],
    ['relayed, bit clear: still to the relay', { giaddr: '10.0.1.1' }, MSG.OFFER, net, { address: '10.0.1.1', port: 67, viaOwnAddress: true }],
    ['renewing (ciaddr set): to ciaddr, no ARP entry needed', { ciaddr: '10.0.0.101' }, MSG.ACK, net, { address: '10.0.0.101', port: 68, viaOwnAddress: true }],
  ] as const)('%s', (_n, over, replyType, unicastSubnet, want) => {
    expect(replyDestination({ ...base, req: { ...eth, ...over }, replyType, unicastSubnet })).toEqual(want);
  });
  it('no socket on our own address: no unicast (the kernel would pick the link)', () => {
    expect(replyDestination({ ...base, boundToOwnAddress: false, req: eth, replyType: MSG.OFFER, unicastSubnet: net }))
      .toEqual({ address: '10.0.0.255', port: 68, viaOwnAddress: false });
  });
  it('proxyDHCP reply (yiaddr 0.0.0.0): no unicast to yiaddr', () => {
    expect(replyDestination({ ...base, yiaddr: z, req: eth, replyType: MSG.OFFER, unicastSubnet: net })).toEqual(bcast);
  });
});
