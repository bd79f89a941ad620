/**
 * Reply packets, pure: from the request, the address decision and the boot plan to an OFFER/ACK/NAK.
 * Boot fields go in both places clients read them: BOOTP siaddr/file (udhcpc and old ROMs read the
 * header) and options 66/67 (clients that ask for 67 expect it there). PXE-NOTES.md has why.
 */
import type { BootPlan } from '../boot/plan.js';
import { isHttpBootFirmware, type MachineFacts } from '../boot/facts.js';
import type { Network } from '../inventory/types.js';
import { MSG, type DhcpPacket } from './packet.js';
import { ipBytes, OPT, u32 } from './options.js';

export interface ReplyInput {
  req: DhcpPacket;
  type: number; // MSG.OFFER / ACK / NAK
  serverId: string;
  yiaddr?: string; // absent: proxyDHCP and INFORM (no address)
  leaseTime?: number;
  network?: Network;
  hostname?: string;
  domain?: string;
  plan?: BootPlan;
  /** What the request said about the client (factsOf): PXE, iPXE. The one detection, shared with planBoot. */
  facts: MachineFacts;
  ipxeNoProxyWait?: boolean;
  message?: string; // NAK reason (option 56)
}

function prefixMask(prefix: number): string {
  const m = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return [24, 16, 8, 0].map((s) => (m >>> s) & 255).join('.');
}

// Option values made once and shared by every reply that carries them: the same server address, mask, lease
// times, host names and boot files go out thousands of times a second under load, and a reply's values are
// only read (encoded into the send buffer). Bounded: a flood of distinct values starts the maps afresh.
const MAX_KEPT = 50_000;
const texts = new Map<string, Buffer>();
const ips = new Map<string, Buffer>();
const numbers = new Map<number, Buffer>();
const BYTE = Array.from({ length: 256 }, (_, i) => Buffer.from([i]));

function kept<K>(map: Map<K, Buffer>, key: K, make: (k: K) => Buffer): Buffer {
  let b = map.get(key);
  if (b === undefined) {
    if (map.size >= MAX_KEPT) map.clear();
    b = make(key);
    map.set(key, b);
  }
  return b;
}
const text = (s: string) => kept(texts, s, (k) => Buffer.from(k));
const ip = (s: string) => kept(ips, s, ipBytes);
const seconds = (n: number) => kept(numbers, n, u32);
const MASKS = Array.from({ length: 33 }, (_, p) => ipBytes(prefixMask(p)));
const dnsOf = new WeakMap<Network, Buffer>();
const PXE_CLIENT = Buffer.from('PXEClient');
const HTTP_CLIENT = Buffer.from('HTTPClient');
// PXE vendor option 6 (discovery control) = 8: use the boot file given, skip boot-server discovery.
const PXE_DISCOVERY_CONTROL = Buffer.from([6, 1, 8, 255]);
// iPXE 175.176 = 1: do not wait for proxyDHCP offers (saves iPXE's second DISCOVER round).
const IPXE_NO_PXEDHCP = Buffer.from([176, 1, 1]);

export function buildReply(i: ReplyInput): { packet: DhcpPacket; order: number[] } {
  const { req } = i;
  const o = new Map<number, Buffer>();
  const order: number[] = [];
  const set = (code: number, v: Buffer) => { o.set(code, v); order.push(code); };
  set(OPT.MSG_TYPE, BYTE[i.type & 255]!);
  set(OPT.SERVER_ID, ip(i.serverId));
  const packet: DhcpPacket = {
    op: 2, htype: req.htype, hlen: req.hlen, hops: 0, xid: req.xid, secs: 0, flags: req.flags,
    ciaddr: i.type === MSG.ACK && req.ciaddr !== '0.0.0.0' ? req.ciaddr : '0.0.0.0',
    yiaddr: i.yiaddr ?? '0.0.0.0', siaddr: '0.0.0.0', giaddr: req.giaddr, chaddr: req.chaddr, sname: '', file: '', options: o,
  };
  if (i.type === MSG.NAK) {
    if (i.message) set(OPT.MESSAGE, Buffer.from(i.message));
  } else {
    if (i.leaseTime !== undefined) {
      set(OPT.LEASE_TIME, seconds(i.leaseTime));
      set(OPT.RENEWAL, seconds(Math.floor(i.leaseTime / 2)));
      set(OPT.REBINDING, seconds(Math.floor((i.leaseTime * 7) / 8)));
    }
    if (i.network) {
      const net = i.network;
      set(OPT.MASK, MASKS[net.prefix] ?? ipBytes(prefixMask(net.prefix)));
      if (net.gateway) set(OPT.ROUTER, ip(net.gateway));
      if (net.dns.length) {
        let dns = dnsOf.get(net);
        if (!dns) { dns = Buffer.concat(net.dns.map(ipBytes)); dnsOf.set(net, dns); }
        set(OPT.DNS, dns);
      }
    }
    if (i.hostname) set(OPT.HOSTNAME, text(i.hostname));
    if (i.domain) set(OPT.DOMAIN, text(i.domain));
    if (i.plan?.action === 'boot') addBoot(packet, i, set);
  }
  // RFC 3046 §2.2: the relay agent information option is echoed unchanged, and last.
  const relay = req.options.get(OPT.RELAY_AGENT);
  if (relay && req.giaddr !== '0.0.0.0') set(OPT.RELAY_AGENT, relay);
  // RFC 2131 §4.1: a NAK through a relay carries the broadcast bit, so the relay broadcasts it to the client.
  if (i.type === MSG.NAK && req.giaddr !== '0.0.0.0') packet.flags |= 0x8000;
  return { packet, order };
}

function addBoot(packet: DhcpPacket, i: ReplyInput, set: (c: number, v: Buffer) => void): void {
  const plan = i.plan;
  if (plan?.action !== 'boot') return;
  const pxeClient = i.facts.vendorClass?.startsWith('PXEClient') ?? false;
  const httpBoot = isHttpBootFirmware(plan.firmware);
  if (plan.bootfile.kind === 'tftp') {
    packet.siaddr = i.serverId;
    packet.file = plan.bootfile.file;
    set(OPT.TFTP_SERVER, text(i.serverId));
    set(OPT.BOOTFILE, text(plan.bootfile.file));
  } else {
    packet.file = plan.bootfile.url.length < 128 ? plan.bootfile.url : '';
    set(OPT.BOOTFILE, text(plan.bootfile.url));
    // UEFI HTTP boot (RFC-less, UEFI spec 24.7): the reply must say HTTPClient or firmware ignores it.
    if (httpBoot) set(OPT.VENDOR_CLASS, HTTP_CLIENT);
  }
  if (pxeClient && !httpBoot) {
    set(OPT.VENDOR_CLASS, PXE_CLIENT);
    set(OPT.VENDOR, PXE_DISCOVERY_CONTROL);
  }
  if (i.ipxeNoProxyWait && i.facts.ipxe) set(OPT.IPXE, IPXE_NO_PXEDHCP);
}
