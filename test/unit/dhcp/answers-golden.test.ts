/**
 * What the DHCP path answers, pinned: 4,000 requests of many shapes (message types, known and unknown MACs,
 * PXE/HTTP/iPXE/plain clients, arches, UUIDs, relays with and without option 82, broadcast flag, ciaddr,
 * requested address and server id right and wrong, proxy mode on both ports, serveNonPxe, leases held by
 * others) go through the bytes path (decodeDhcp of the wire bytes, handleDhcp, encodeDhcp of the reply) at a
 * fixed clock, and each whole answer (reply bytes, lease change, events, log line) is digested and compared
 * with test/fixtures/dhcp/answers.golden.txt, made from the code before the DHCP path's speed work (issue 15
 * target 2). A change that makes the path cheaper must not change one answer; a change meant to alter answers
 * regenerates the file (`UPDATE_GOLDEN=1`) and says why in its commit.
 */
import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeDhcp, encodeDhcp, MSG, type DhcpPacket } from '../../../src/dhcp/packet.js';
import { OPT } from '../../../src/dhcp/options.js';
import { handleDhcp, type DhcpContext, type LeaseReader } from '../../../src/dhcp/handle.js';
import { loadInventory } from '../../../src/inventory/index.js';
import type { LeaseRecord } from '../../../src/state/types.js';

const GOLDEN = join(import.meta.dirname, '../../fixtures/dhcp/answers.golden.txt');
const CASES = 4000;
const NOW = Date.parse('2026-12-02T00:00:00Z');
const later = (s: number) => new Date(NOW + s * 1000).toISOString();

function lcg(seed: number): () => number {
  let s = seed;
  return () => { s = (s * 1103515245 + 12345) % 2 ** 31; return s / 2 ** 31; };
}

const POOL_MACS = ['52:54:00:aa:00:01', '52:54:00:aa:00:02', '52:54:00:aa:00:03'];
/** Leases as the handler reads them: two pool leases, an offer, a declined address, an expired one. */
const RECORDS: LeaseRecord[] = [
  { mac: POOL_MACS[0]!, ip: '10.0.0.200', state: 'bound', expiresAt: later(3000) },
  { mac: POOL_MACS[1]!, ip: '10.0.0.201', state: 'offered', expiresAt: later(30) },
  { mac: '52:54:00:bb:00:01', ip: '10.0.0.202', state: 'declined', expiresAt: later(500) },
  { mac: POOL_MACS[2]!, ip: '10.0.0.203', state: 'bound', expiresAt: later(-10) },
];
const leases: LeaseReader = {
  byMacLive: (mac) => RECORDS.find((r) => r.mac === mac && Date.parse(r.expiresAt) > NOW),
  holder: (ip) => RECORDS.find((r) => r.ip === ip && Date.parse(r.expiresAt) > NOW && r.state !== 'released'),
  lastOf: (mac) => RECORDS.find((r) => r.mac === mac),
  poolHint: () => undefined,
  canAllocate: () => true,
};

const ipb = (a: string) => Buffer.from(a.split('.').map(Number));
const VENDORS = [undefined, 'PXEClient:Arch:00000:UNDI:002001', 'PXEClient:Arch:00007:UNDI:003016', 'PXEClient:Arch:00009:UNDI:003016',
  'HTTPClient:Arch:00016:UNDI:003001', 'udhcp 1.36.1', 'PXEClient'];
const USER_CLASSES = [undefined, Buffer.from('iPXE'), Buffer.from([4, 0x69, 0x50, 0x58, 0x45]), Buffer.from('other')];
const ARCHES = [undefined, [0, 0], [0, 7], [0, 9], [0, 16], [0, 6, 0, 7]];
const UUIDS = [undefined, Buffer.alloc(17), Buffer.from('00' + '78563412341278569abcdef012345678', 'hex')];
const GIADDRS = ['0.0.0.0', '0.0.0.0', '10.0.0.77', '203.0.113.9', '172.16.5.1'];
const PARAMS = [undefined, [1, 3, 6, 12, 15, 43, 60, 66, 67], [1, 28, 2, 3, 15, 6, 12], [1, 3, 6, 175, 203]];

interface Case { packet: DhcpPacket; ctx: DhcpContext; what: string }

function cases(inv: Awaited<ReturnType<typeof loadInventory>>): Case[] {
  const rand = lcg(152);
  const pick = <T>(a: readonly T[]): T => a[Math.floor(rand() * a.length)]!;
  const known = inv.machines.flatMap((m) => m.macs.map((mac) => ({ mac, ip: m.ip })));
  const out: Case[] = [];
  for (let i = 0; i < CASES; i++) {
    const k = rand();
    const who = k < 0.6 ? pick(known) : k < 0.8 ? { mac: pick(POOL_MACS), ip: '10.0.0.200' } : { mac: `52:54:00:cc:00:${(i % 256).toString(16).padStart(2, '0')}`, ip: '10.0.0.220' };
    const type = pick([MSG.DISCOVER, MSG.DISCOVER, MSG.REQUEST, MSG.REQUEST, MSG.REQUEST, MSG.INFORM, MSG.RELEASE, MSG.DECLINE, 9, 2]);
    const options = new Map<number, Buffer>([[OPT.MSG_TYPE, Buffer.from([type])]]);
    const params = pick(PARAMS);
    if (params) options.set(OPT.PARAMS, Buffer.from(params));
    const vendor = pick(VENDORS);
    if (vendor) options.set(OPT.VENDOR_CLASS, Buffer.from(vendor));
    const arch = pick(ARCHES);
    if (arch) options.set(OPT.CLIENT_ARCH, Buffer.from(arch));
    const uc = pick(USER_CLASSES);
    if (uc) options.set(OPT.USER_CLASS, uc);
    if (rand() < 0.1) options.set(OPT.IPXE, Buffer.from([176, 1, 1]));
    const uuid = pick(UUIDS);
    if (uuid) options.set(OPT.UUID, uuid);
    const requested = pick([undefined, who.ip, who.ip, '10.0.0.150', '192.168.9.9']);
    if (requested) options.set(OPT.REQUESTED_IP, ipb(requested));
    const serverId = pick([undefined, '10.0.0.1', '10.0.0.1', '10.0.0.9']);
    if (serverId) options.set(OPT.SERVER_ID, ipb(serverId));
    if (rand() < 0.3) options.set(OPT.CLIENT_ID, Buffer.concat([Buffer.from([1]), Buffer.from(who.mac.replace(/:/g, ''), 'hex')]));
    const giaddr = pick(GIADDRS);
    if (rand() < 0.3) options.set(OPT.RELAY_AGENT, Buffer.from([1, 4, 0, 0, 0, i & 255, 2, 2, 1, 2]));
    const chaddr = Buffer.alloc(16);
    Buffer.from(who.mac.replace(/:/g, ''), 'hex').copy(chaddr);
    const packet: DhcpPacket = {
      op: rand() < 0.97 ? 1 : 2, htype: rand() < 0.98 ? 1 : 6, hlen: rand() < 0.98 ? 6 : pick([0, 1, 16]), hops: giaddr === '0.0.0.0' ? 0 : 1,
      xid: Math.floor(rand() * 2 ** 32), secs: Math.floor(rand() * 5), flags: rand() < 0.4 ? 0x8000 : 0,
      ciaddr: pick(['0.0.0.0', '0.0.0.0', who.ip, '10.0.0.150']), yiaddr: '0.0.0.0', siaddr: '0.0.0.0', giaddr, chaddr,
      sname: rand() < 0.05 ? 'somehost' : '', file: rand() < 0.05 ? 'pxelinux.0' : '', options,
    };
    const mode = rand() < 0.8 ? 'authoritative' as const : 'proxy' as const;
    const ctx: DhcpContext = {
      inv, leases, now: NOW + (i % 7) * 1000, serverId: '10.0.0.1', baseUrl: pick(['http://10.0.0.1:8080', 'http://boot.example:80']),
      viaProxyPort: mode === 'proxy' && rand() < 0.4,
      config: { mode, leaseTime: pick([3600, 120, 86400]), serveNonPxe: rand() < 0.7, ipxeNoProxyWait: rand() < 0.7, poolNetwork: undefined },
    };
    out.push({ packet, ctx, what: `case ${i}: type ${type} mac ${who.mac} vendor ${vendor} giaddr ${giaddr} mode ${mode}` });
  }
  return out;
}

/** One answer, whole: reply bytes as sent, lease change, events, log line. */
function answerOf(c: Case): string {
  const d = decodeDhcp(encodeDhcp(c.packet));
  if (!d.ok) return `undecodable ${d.reason}`;
  const a = handleDhcp(d.packet, c.ctx);
  const reply = a.reply ? encodeDhcp(a.reply.packet, a.reply.order).toString('hex') : '-';
  return JSON.stringify([a.mac, a.host ?? null, a.type ?? null, reply, a.lease ?? null, a.events, a.log.level, a.log.msg, a.log.fields ?? null]);
}

const digest = (s: string) => createHash('sha256').update(s).digest('hex').slice(0, 16);

describe('DHCP answers, pinned', () => {
  it(`${CASES} requests of many shapes get the answers they got before`, async () => {
    const inv = await loadInventory(join(import.meta.dirname, '../../fixtures/profiles'));
    const all = cases(inv);
    const got = all.map((c) => digest(answerOf(c)));
    if (process.env.UPDATE_GOLDEN === '1') writeFileSync(GOLDEN, `${got.join('\n')}\n`);
    const want = readFileSync(GOLDEN, 'utf8').trim().split('\n');
    const differ = got.flatMap((g, i) => (g === want[i] ? [] : [i]));
    expect(differ.slice(0, 5).map((i) => `${all[i]!.what}: ${answerOf(all[i]!)}`)).toEqual([]);
    expect(got.length).toBe(want.length);
    // The corpus covers what it means to: offers, ACKs and NAKs (proxy ones too), drops, lease changes.
    const seen = new Map<string, number>();
    for (const c of all) {
      const a = JSON.parse(answerOf(c)) as [string, unknown, unknown, string, unknown];
      const reply = a[3] === '-' ? undefined : decodeDhcp(Buffer.from(a[3], 'hex'));
      const k = `${reply?.ok ? reply.packet.options.get(OPT.MSG_TYPE)?.[0] : 'none'}/${c.ctx.config.mode}/${a[4] === null ? 'nolease' : 'lease'}`;
      seen.set(k, (seen.get(k) ?? 0) + 1);
    }
    for (const k of ['2/authoritative/nolease', '2/authoritative/lease', '5/authoritative/lease', '6/authoritative/nolease', 'none/authoritative/nolease',
      'none/authoritative/lease', '2/proxy/nolease', '5/proxy/nolease', 'none/proxy/nolease']) expect(seen.get(k) ?? 0, `${k} in ${JSON.stringify([...seen])}`).toBeGreaterThan(10);
  });
});
