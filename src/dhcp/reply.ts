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

export function buildReply(i: ReplyInput): { packet: DhcpPacket; order: number[] } {
  const { req } = i;
  const o = new Map<number, Buffer>();
  const order: number[] = [];
  const set = (code: number, v: Buffer) => { o.set(code, v); order.push(code); };
  set(OPT.MSG_TYPE, Buffer.from([i.type]));
  set(OPT.SERVER_ID, ipBytes(i.serverId));
  const packet: DhcpPacket = {
    op: 2, htype: req.htype, hlen: req.hlen, hops: 0, xid: req.xid, secs: 0, flags: req.flags,
    ciaddr: i.type === MSG.ACK && req.ciaddr !== '0.0.0.0' ? req.ciaddr : '0.0.0.0',
    yiaddr: i.yiaddr ?? '0.0.0.0', siaddr: '0.0.0.0', giaddr: req.giaddr, chaddr: req.chaddr, sname: '', file: '', options: o,
  };
  if (i.type === MSG.NAK) {
    if (i.message) set(OPT.MESSAGE, Buffer.from(i.message));
  } else {
    if (i.leaseTime !== undefined) {
      set(OPT.LEASE_TIME, u32(i.leaseTime));
      set(OPT.RENEWAL, u32(Math.floor(i.leaseTime / 2)));
      set(OPT.REBINDING, u32(Math.floor((i.leaseTime * 7) / 8)));
    }
    if (i.network) {
      set(OPT.MASK, ipBytes(prefixMask(i.network.prefix)));
      if (i.network.gateway) set(OPT.ROUTER, ipBytes(i.network.gateway));
      if (i.network.dns.length) set(OPT.DNS, Buffer.concat(i.network.dns.map(ipBytes)));
    }
    if (i.hostname) set(OPT.HOSTNAME, Buffer.from(i.hostname));
    if (i.domain) set(OPT.DOMAIN, Buffer.from(i.domain));
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
    set(OPT.TFTP_SERVER, Buffer.from(i.serverId));
    set(OPT.BOOTFILE, Buffer.from(plan.bootfile.file));
  } else {
    packet.file = plan.bootfile.url.length < 128 ? plan.bootfile.url : '';
    set(OPT.BOOTFILE, Buffer.from(plan.bootfile.url));
    // UEFI HTTP boot (RFC-less, UEFI spec 24.7): the reply must say HTTPClient or firmware ignores it.
    if (httpBoot) set(OPT.VENDOR_CLASS, Buffer.from('HTTPClient'));
  }
  if (pxeClient && !httpBoot) {
    set(OPT.VENDOR_CLASS, Buffer.from('PXEClient'));
    // PXE vendor option 6 (discovery control) = 8: use the boot file given, skip boot-server discovery.
    set(OPT.VENDOR, Buffer.from([6, 1, 8, 255]));
  }
  // iPXE 175.176 = 1: do not wait for proxyDHCP offers (saves iPXE's second DISCOVER round).
  if (i.ipxeNoProxyWait && i.facts.ipxe) set(OPT.IPXE, Buffer.from([176, 1, 1]));
}
