/**
 * The DHCP listener: the only DHCP code that touches node:dgram. Modes: authoritative (addresses from
 * reservations and an optional pool, RFC 2131 state rules), proxy (PXE clients only, no address, on 67
 * and 4011 — beside a DHCP server we do not own), off. Every boot answer comes from planBoot.
 *
 * Replies go to the relay (giaddr, port 67) when there is one, to ciaddr when the client has an
 * address, else broadcast. RFC 2131 §4.1 would allow unicast to yiaddr, but that needs an ARP entry
 * for an unconfigured client, which Node cannot add: broadcast it is. Node cannot bind a socket to a
 * device either, so replies leave through a second socket bound to the listener's own address (port
 * 67, SO_REUSEADDR): Linux sends a 255.255.255.255 datagram out of the interface that owns its source
 * address. That matters: OVMF's PXE accepts only the limited broadcast, not the subnet's directed one.
 * If the address is not configured here (tests on loopback), we fall back to the directed broadcast.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import type { DhcpConfig } from '../config.js';
import type { EventSink, BootStage } from '../events/types.js';
import type { Logger } from '../log.js';
import type { Inventory } from '../inventory/types.js';
import { planBoot, type BootPlan } from '../boot/plan.js';
import { decodeDhcp, encodeDhcp, macOf, MSG, MSG_NAME, type DhcpPacket } from './packet.js';
import { factsOf, OPT, readIp } from './options.js';
import { buildReply } from './reply.js';
import { fromPool, networkOf, reservation, type Address } from './allocate.js';
import type { LeaseStore } from './leases.js';
import { intToIp, ipToInt } from '../inventory/ip.js';

export interface DhcpServerOptions {
  config: DhcpConfig;
  address: string; // option 54 and siaddr
  baseUrl: string;
  getInventory: () => Inventory;
  leases: LeaseStore;
  events: EventSink;
  logger: Logger;
}

export interface DhcpServer {
  port: number;
  close(): Promise<void>;
}

const OFFER_HOLD_MS = 60_000;
const DECLINE_HOLD_MS = 10 * 60_000;

function bind(sock: Socket, port: number, address: string): Promise<void> {
  return new Promise((resolve, reject) => {
    sock.once('error', reject);
    sock.bind(port, address, () => { sock.off('error', reject); sock.setBroadcast(true); resolve(); });
  });
}

export async function startDhcpServer(o: DhcpServerOptions): Promise<DhcpServer> {
  const { config, logger } = o;
  const main = createSocket({ type: 'udp4', reuseAddr: true });
  const proxy = config.mode === 'proxy' ? createSocket({ type: 'udp4', reuseAddr: true }) : undefined;
  const ctx = { baseUrl: o.baseUrl };
  const iso = (ms: number) => new Date(Date.now() + ms).toISOString();
  let out: Socket | undefined; // bound to o.address:port when that address is ours
  const broadcast = () => {
    if (out) return '255.255.255.255';
    const net = networkOf(o.getInventory(), o.address);
    const base = net ? ipToInt(net.address) : undefined;
    return net && base !== undefined ? intToIp(base + 2 ** (32 - net.prefix) - 1) : '255.255.255.255';
  };

  function send(sock: Socket, req: DhcpPacket, reply: { packet: DhcpPacket; order: number[] }, rinfo: RemoteInfo, viaProxyPort: boolean): void {
    const buf = encodeDhcp(reply.packet, reply.order);
    const type = reply.packet.options.get(OPT.MSG_TYPE)?.[0];
    let to = { address: broadcast(), port: 68 };
    if (req.giaddr !== '0.0.0.0') to = { address: req.giaddr, port: 67 };
    else if (viaProxyPort) to = { address: rinfo.address, port: rinfo.port };
    else if (req.ciaddr !== '0.0.0.0' && type !== MSG.NAK) to = { address: req.ciaddr, port: 68 };
    const via = out && !viaProxyPort ? out : sock;
    const go = () => via.send(buf, to.port, to.address, (err) => { if (err) logger.warn({ err, to }, 'dhcp send failed'); });
    if (config.replyDelayMs > 0) setTimeout(go, config.replyDelayMs); else go();
  }

  function emit(stage: BootStage, mac: string, host: string | undefined, address?: string, detail?: string): void {
    o.events.emit({ mac, stage, ...(host ? { host } : {}), ...(address ? { address } : {}), ...(detail ? { detail } : {}) });
  }

  /** The address this client may have, or undefined (with the reason logged). */
  function addressFor(inv: Inventory, mac: string, plan: BootPlan, pxe: boolean): Address | undefined {
    const r = reservation(inv, mac);
    if (r) return pxe || config.serveNonPxe ? r : undefined;
    // Unknown MAC: an address only when the unknown-machine policy boots it (discovery).
    return plan.action === 'boot' && pxe ? fromPool(inv, o.leases, mac, config.poolNetwork) : undefined;
  }

  async function authoritative(req: DhcpPacket, type: number, rinfo: RemoteInfo): Promise<void> {
    const inv = o.getInventory();
    const mac = macOf(req);
    const facts = factsOf(req, mac, 'dhcp');
    const plan = planBoot(facts, inv, ctx);
    const log = logger.child({ mac, xid: req.xid.toString(16), type: MSG_NAME[type] });
    const host = inv.byMac.get(mac)?.host;
    const wantsBoot = facts.pxe || facts.ipxe;
    const reply = (t: number, addr: Address | undefined, extra: { message?: string } = {}) => buildReply({
      req, type: t, serverId: o.address, ...(addr ? { yiaddr: addr.ip, network: addr.network, leaseTime: config.leaseTime } : {}),
      ...(addr?.host ? { hostname: addr.host, domain: inv.site.domain } : {}), ...(wantsBoot ? { plan } : {}), ipxeNoProxyWait: config.ipxeNoProxyWait, ...extra,
    });
    if (type === MSG.DISCOVER) {
      emit('dhcp-discover', mac, host, undefined, facts.vendorClass);
      const addr = addressFor(inv, mac, plan, wantsBoot);
      if (!addr) { log.debug({ reason: plan.action === 'ignore' ? plan.reason : 'no address for this client' }, 'dhcp ignore'); emit('dhcp-ignore', mac, host, undefined, plan.action === 'ignore' ? plan.reason : 'no address'); return; }
      if (!addr.reserved) await o.leases.record({ mac, ip: addr.ip, state: 'offered', expiresAt: iso(OFFER_HOLD_MS) });
      send(main, req, reply(MSG.OFFER, addr), rinfo, false);
      log.info({ ip: addr.ip, boot: plan.action === 'boot' && wantsBoot ? plan.bootfile : undefined }, 'dhcp offer');
      emit('dhcp-offer', mac, host, addr.ip);
      return;
    }
    if (type === MSG.REQUEST) return request(req, rinfo, inv, mac, plan, wantsBoot, host, reply, log);
    if (type === MSG.DECLINE) {
      const ip = readIp(req.options.get(OPT.REQUESTED_IP));
      if (ip) await o.leases.record({ mac, ip, state: 'declined', expiresAt: iso(DECLINE_HOLD_MS) });
      log.warn({ ip }, 'dhcp decline: address in use elsewhere, held back');
      emit('dhcp-decline', mac, host, ip);
      return;
    }
    if (type === MSG.RELEASE) {
      const cur = o.leases.byMacLive(mac);
      if (cur && cur.ip === req.ciaddr) await o.leases.record({ ...cur, state: 'released', expiresAt: new Date().toISOString() });
      emit('dhcp-release', mac, host, req.ciaddr);
      return;
    }
    if (type === MSG.INFORM) {
      send(main, req, buildReply({ req, type: MSG.ACK, serverId: o.address, network: networkOf(inv, req.ciaddr), ...(wantsBoot ? { plan } : {}) }), rinfo, false);
      emit('dhcp-inform', mac, host, req.ciaddr);
    }
  }

  async function request(req: DhcpPacket, rinfo: RemoteInfo, inv: Inventory, mac: string, plan: BootPlan, wantsBoot: boolean, host: string | undefined,
    reply: (t: number, a: Address | undefined, e?: { message?: string }) => ReturnType<typeof buildReply>, log: Logger): Promise<void> {
    const serverId = readIp(req.options.get(OPT.SERVER_ID));
    const requested = readIp(req.options.get(OPT.REQUESTED_IP)) ?? (req.ciaddr !== '0.0.0.0' ? req.ciaddr : undefined);
    emit('dhcp-request', mac, host, requested);
    if (serverId && serverId !== o.address) {
      // SELECTING another server's offer (RFC 2131 §4.3.2): let our offer go.
      const cur = o.leases.byMacLive(mac);
      if (cur?.state === 'offered') await o.leases.record({ ...cur, state: 'released', expiresAt: new Date().toISOString() });
      return;
    }
    const addr = addressFor(inv, mac, plan, wantsBoot);
    const nak = (message: string) => {
      // Only NAK addresses on our networks: a client from elsewhere belongs to another server.
      if (!requested || !networkOf(inv, requested)) return;
      send(main, req, reply(MSG.NAK, undefined, { message }), rinfo, false);
      log.info({ requested, message }, 'dhcp nak');
      emit('dhcp-nak', mac, host, requested, message);
    };
    if (!addr) return nak('no address for this client');
    if (requested !== addr.ip) return nak(`${requested ?? 'no address'} is not this client's address`);
    const holder = o.leases.holder(addr.ip);
    if (holder && holder.mac !== mac) return nak(`${addr.ip} is in use`);
    // Durable before the ACK leaves: a crash after this line cannot lose the grant.
    await o.leases.record({ mac, ip: addr.ip, state: 'bound', expiresAt: iso(config.leaseTime * 1000), ...(addr.host ? { host: addr.host } : {}) });
    send(main, req, reply(MSG.ACK, addr), rinfo, false);
    log.info({ ip: addr.ip }, 'dhcp ack');
    emit('dhcp-ack', mac, host, addr.ip);
  }

  /** proxyDHCP (PXE spec §2.2.5): boot information only, never an address. */
  function proxied(req: DhcpPacket, type: number, rinfo: RemoteInfo, sock: Socket, viaProxyPort: boolean): void {
    const inv = o.getInventory();
    const mac = macOf(req);
    const plan = planBoot(factsOf(req, mac, 'proxydhcp'), inv, ctx);
    const host = inv.byMac.get(mac)?.host;
    if (plan.action === 'ignore') { logger.debug({ mac, reason: plan.reason }, 'proxydhcp ignore'); return; }
    if (type === MSG.DISCOVER && !viaProxyPort) {
      emit('dhcp-discover', mac, host, undefined, 'proxy');
      send(sock, req, buildReply({ req, type: MSG.OFFER, serverId: o.address, plan, ipxeNoProxyWait: false }), rinfo, false);
      emit('dhcp-offer', mac, host, undefined, 'proxy: boot file only');
    } else if (type === MSG.REQUEST) {
      send(sock, req, buildReply({ req, type: MSG.ACK, serverId: o.address, plan, ipxeNoProxyWait: false }), rinfo, viaProxyPort);
      emit('dhcp-ack', mac, host, undefined, 'proxy: boot file only');
    }
  }

  function onMessage(sock: Socket, viaProxyPort: boolean) {
    return (msg: Buffer, rinfo: RemoteInfo) => {
      const d = decodeDhcp(msg);
      if (!d.ok) { logger.debug({ from: rinfo.address, reason: d.reason }, 'dhcp packet dropped'); return; }
      const req = d.packet;
      const type = req.options.get(OPT.MSG_TYPE)?.[0];
      if (req.op !== 1 || type === undefined) { logger.debug({ from: rinfo.address }, 'dhcp: not a client request'); return; }
      const work = config.mode === 'proxy' ? Promise.resolve(proxied(req, type, rinfo, sock, viaProxyPort)) : authoritative(req, type, rinfo);
      work.catch((err: unknown) => logger.error({ err, mac: macOf(req) }, 'dhcp handling failed'));
    };
  }

  main.on('message', onMessage(main, false));
  main.on('error', (err) => logger.error({ err }, 'dhcp socket error'));
  await bind(main, config.port, config.bind);
  if (config.bind === '0.0.0.0' && config.port !== 0) {
    const s = createSocket({ type: 'udp4', reuseAddr: true });
    try {
      await bind(s, config.port, o.address);
      // Unicast to our address (renewals, relays) now lands here: handle it like the main socket.
      s.on('message', onMessage(s, false));
      s.on('error', (err) => logger.error({ err }, 'dhcp send socket error'));
      out = s;
    } catch (err) {
      s.close();
      logger.warn({ err, address: o.address }, 'cannot bind the reply socket to the listener address: replies go to the directed broadcast');
    }
  }
  if (proxy) {
    proxy.on('message', onMessage(proxy, true));
    proxy.on('error', (err) => logger.error({ err }, 'proxydhcp socket error'));
    await bind(proxy, config.proxyPort, config.bind);
  }
  logger.info({ mode: config.mode, port: main.address().port, address: o.address }, 'dhcp listening');
  return {
    port: main.address().port,
    close: async () => {
      await new Promise<void>((r) => main.close(() => r()));
      if (out) await new Promise<void>((r) => out!.close(() => r()));
      if (proxy) await new Promise<void>((r) => proxy.close(() => r()));
    },
  };
}
