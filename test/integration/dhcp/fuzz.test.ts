/**
 * Hostile battery, DHCP (issue 16 items 1 and 9): 100,000 packets — random bytes, bit-flipped real
 * requests, random headers (hlen 0/1, foreign giaddr), and spoofed DECLINE / RELEASE / REQUEST aimed at
 * other machines' leases and reservations — through the same steps as the server (decodeDhcp →
 * handleDhcp → commit to the real file lease store) but without sockets, so no reply can reach a real
 * network. Afterwards every victim still holds its address, no address has two holders, no reserved
 * address belongs to another MAC, no empty MAC holds anything, and nothing threw.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { decodeDhcp, encodeDhcp, MSG, type DhcpPacket } from '../../../src/dhcp/packet.js';
import { OPT } from '../../../src/dhcp/options.js';
import { handleDhcp, type DhcpContext } from '../../../src/dhcp/handle.js';
import { FileLeaseStore } from '../../../src/state/file/leases.js';
import { loadInventory } from '../../../src/inventory/index.js';
import type { Inventory } from '../../../src/inventory/types.js';
import { silentLogger } from '../../../src/log.js';

const PACKETS = 100_000;
const dir = mkdtempSync(join(tmpdir(), 'rolecast-dhcpfuzz-'));
let inv: Inventory;
let leases: FileLeaseStore;
let now = Date.parse('2026-12-02T00:00:00Z');
let threw = 0;

function lcg(seed: number): () => number {
  let s = seed;
  return () => { s = (s * 1103515245 + 12345) % 2 ** 31; return s / 2 ** 31; };
}
const rand = lcg(16);
const int = (n: number) => Math.floor(rand() * n);
const pick = <T>(a: readonly T[]): T => a[int(a.length)]!;
const macBytes = (mac: string) => Buffer.from(mac.replace(/:/g, ''), 'hex');
const ipBuf = (a: string) => Buffer.from(a.split('.').map(Number));

function packet(o: { type: number; mac: string; requested?: string; ciaddr?: string; giaddr?: string; hlen?: number; htype?: number; pxe?: boolean; serverId?: string }): DhcpPacket {
  const options = new Map<number, Buffer>([[OPT.MSG_TYPE, Buffer.from([o.type])]]);
  if (o.pxe) options.set(OPT.VENDOR_CLASS, Buffer.from('PXEClient:Arch:00000:UNDI:002001'));
  if (o.requested) options.set(OPT.REQUESTED_IP, ipBuf(o.requested));
  if (o.serverId) options.set(OPT.SERVER_ID, ipBuf(o.serverId));
  const chaddr = Buffer.alloc(16);
  macBytes(o.mac).copy(chaddr);
  return { op: 1, htype: o.htype ?? 1, hlen: o.hlen ?? 6, hops: 0, xid: int(2 ** 32), secs: 0, flags: 0, ciaddr: o.ciaddr ?? '0.0.0.0', yiaddr: '0.0.0.0', siaddr: '0.0.0.0', giaddr: o.giaddr ?? '0.0.0.0', chaddr, sname: '', file: '', options };
}
const wire = (p: DhcpPacket) => encodeDhcp(p, [...p.options.keys()]);

/** One packet through the server's steps (src/dhcp/server.ts handle(), minus the socket). */
async function serve(bytes: Buffer): Promise<string | undefined> {
  try {
    const d = decodeDhcp(bytes);
    if (!d.ok) return undefined;
    const ctx: DhcpContext = { inv, leases, config: { mode: 'authoritative', leaseTime: 3600, serveNonPxe: true, ipxeNoProxyWait: true, poolNetwork: 'prov' }, serverId: '10.0.0.1', baseUrl: 'http://10.0.0.1:8080', now, viaProxyPort: false };
    const a = handleDhcp(d.packet, ctx);
    if (a.lease && !(await leases.commit(a.lease.record, a.lease.network !== undefined ? { network: a.lease.network } : {}))) return undefined;
    return a.reply ? `${a.reply.packet.options.get(OPT.MSG_TYPE)?.[0]} ${a.reply.packet.yiaddr}` : undefined;
  } catch {
    threw++;
    return undefined;
  }
}

const VICTIMS = Array.from({ length: 30 }, (_, i) => `52:54:00:ee:00:${i.toString(16).padStart(2, '0')}`);
const victimIp = new Map<string, string>();

beforeAll(async () => {
  inv = await loadInventory(resolve(import.meta.dirname, '../../fixtures/profiles'));
  leases = await FileLeaseStore.open(dir, silentLogger(), () => now);
  // Pool clients: DISCOVER, REQUEST what was offered.
  for (const mac of VICTIMS) {
    const offer = await serve(wire(packet({ type: MSG.DISCOVER, mac, pxe: true })));
    const ip = offer?.split(' ')[1];
    expect(ip, mac).toMatch(/^10\.0\.0\.2\d\d$/);
    expect(await serve(wire(packet({ type: MSG.REQUEST, mac, pxe: true, requested: ip!, serverId: '10.0.0.1' })))).toBe(`${MSG.ACK} ${ip}`);
    victimIp.set(mac, ip!);
  }
  // Reserved machines take their own addresses.
  for (const m of inv.machines) {
    expect(await serve(wire(packet({ type: MSG.REQUEST, mac: m.macs[0]!, pxe: true, requested: m.ip, serverId: '10.0.0.1' })))).toBe(`${MSG.ACK} ${m.ip}`);
  }
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('DHCP fuzz', () => {
  it(`${PACKETS.toLocaleString('en')} hostile packets: no lease lost or stolen, no double assignment, nothing thrown`, async () => {
    const reserved = inv.machines.map((m) => ({ mac: m.macs[0]!, ip: m.ip }));
    const targets = [...victimIp.values(), ...reserved.map((r) => r.ip), '10.0.0.248', '10.0.0.1'];
    const attacker = () => `52:54:00:${[int(256), int(256), int(256)].map((b) => b.toString(16).padStart(2, '0')).join(':')}`;
    const genuine = [...victimIp].map(([mac, ip]) => wire(packet({ type: MSG.REQUEST, mac, pxe: true, requested: ip, serverId: '10.0.0.1' })));
    const kinds = { random: 0, flipped: 0, header: 0, decline: 0, release: 0, hijack: 0 };
    const t0 = Date.now();
    for (let i = 0; i < PACKETS; i++) {
      now += 10; // 100,000 packets over ~17 minutes of lease time: offers expire, leases (1 h) do not
      const k = int(6);
      let bytes: Buffer;
      if (k === 0) { kinds.random++; bytes = Buffer.from(Array.from({ length: int(600) }, () => int(256))); }
      else if (k === 1) {
        kinds.flipped++;
        bytes = Buffer.from(pick(genuine));
        for (let f = 0; f < 1 + int(8); f++) { const at = int(bytes.length); bytes[at] = bytes[at]! ^ (1 << int(8)); }
      } else if (k === 2) {
        kinds.header++;
        bytes = wire(packet({ type: 1 + int(8), mac: attacker(), pxe: rand() < 0.5, hlen: pick([0, 1, 6, 6, 16]), htype: pick([1, 1, 6]), giaddr: pick(['0.0.0.0', '172.16.5.1', '10.0.0.77', '255.255.255.255']), requested: pick(targets), ciaddr: pick(['0.0.0.0', pick(targets)]) }));
      } else if (k === 3) { kinds.decline++; bytes = wire(packet({ type: MSG.DECLINE, mac: attacker(), requested: pick(targets), serverId: '10.0.0.1' })); }
      else if (k === 4) { kinds.release++; bytes = wire(packet({ type: MSG.RELEASE, mac: attacker(), ciaddr: pick(targets), serverId: '10.0.0.1' })); }
      else { kinds.hijack++; bytes = wire(packet({ type: MSG.REQUEST, mac: attacker(), pxe: true, requested: pick(targets), serverId: '10.0.0.1' })); }
      await serve(bytes);
    }
    const ms = Date.now() - t0;
    console.log(`dhcp fuzz: ${PACKETS} packets in ${ms} ms ${JSON.stringify(kinds)}; ${threw} threw`);
    expect(threw).toBe(0);
    for (const [mac, ip] of victimIp) expect(leases.addressOf(mac), mac).toBe(ip);
    for (const r of reserved) expect([r.ip, leases.holder(r.ip)?.mac ?? r.mac]).toEqual([r.ip, r.mac]);
    const live = leases.list().filter((l) => Date.parse(l.expiresAt) > now && (l.state === 'bound' || l.state === 'offered'));
    const byIp = new Map<string, string[]>();
    for (const l of live) byIp.set(l.ip, [...(byIp.get(l.ip) ?? []), l.mac]);
    expect([...byIp].filter(([, macs]) => macs.length > 1)).toEqual([]);
    expect(leases.list().filter((l) => !/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/.test(l.mac))).toEqual([]);
    // The store survives a reopen with the same leases (what a restart would find).
    const again = await FileLeaseStore.open(dir, silentLogger(), () => now);
    for (const [mac, ip] of victimIp) expect(again.addressOf(mac)).toBe(ip);
  }, 180_000);
});
