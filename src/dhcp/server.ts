/**
 * The DHCP listener: the only DHCP code that touches node:dgram. It moves bytes: decode, ask the pure
 * handleDhcp (src/dhcp/handle.ts) for the answer, commit its lease change to the state layer, send the
 * reply where replyDestination (src/dhcp/destination.ts) says, record its events. Modes: authoritative,
 * proxy (on 67 and 4011, beside a DHCP server we do not own), off.
 *
 * Node cannot bind a socket to a device, so replies leave through a second socket bound to the
 * listener's own address (port 67, SO_REUSEADDR): Linux sends a 255.255.255.255 datagram out of the
 * interface that owns its source address (OVMF accepts only the limited broadcast).
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import type { DhcpConfig } from '../config.js';
import type { EventSink } from '../events/types.js';
import type { Logger } from '../log.js';
import type { Inventory } from '../inventory/types.js';
import type { LeaseStore } from '../state/types.js';
import { decodeDhcp, encodeDhcp, type DhcpPacket } from './packet.js';
import { OPT } from './options.js';
import { handleDhcp, type DhcpAnswer } from './handle.js';
import { replyDestination } from './destination.js';
import { unicastReplies, type UnicastReplies } from './unicast.js';
import { networkOf } from './allocate.js';
import { intToIp, ipToInt } from '../inventory/ip.js';
import { dhcpMetrics } from '../metrics.js';

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

/**
 * Receive buffer asked of the kernel (capped by net.core.rmem_max). DORA at 1000/s is ~2,000
 * packets a second and each queued datagram costs ~2 KB of buffer: the 208 KB default overflows after
 * ~50 ms without a read (a GC pause, a descheduled process on a busy host) and drops requests. 1 MiB
 * rides out ~200 ms; more would only queue requests past the client's patience when overloaded.
 */
const RECV_BUFFER = 1 << 20;

function bind(sock: Socket, port: number, address: string): Promise<void> {
  return new Promise((resolve, reject) => {
    sock.once('error', reject);
    sock.bind(port, address, () => {
      sock.off('error', reject);
      sock.setBroadcast(true);
      try { sock.setRecvBufferSize(RECV_BUFFER); } catch { /* the kernel's default then */ }
      resolve();
    });
  });
}

export async function startDhcpServer(o: DhcpServerOptions): Promise<DhcpServer> {
  const { config, logger } = o;
  const main = createSocket({ type: 'udp4', reuseAddr: true });
  const proxy = config.mode === 'proxy' ? createSocket({ type: 'udp4', reuseAddr: true }) : undefined;
  let out: Socket | undefined; // bound to o.address:port when that address is ours
  let unicast: UnicastReplies = { subnet: () => undefined, install: () => false };

  const directedBroadcast = () => {
    const net = networkOf(o.getInventory(), o.address);
    const base = net ? ipToInt(net.address) : undefined;
    return net && base !== undefined ? intToIp(base + 2 ** (32 - net.prefix) - 1) : '255.255.255.255';
  };

  function send(sock: Socket, answer: DhcpAnswer, req: DhcpPacket, rinfo: RemoteInfo, viaProxyPort: boolean): void {
    const reply = answer.reply!;
    const buf = encodeDhcp(reply.packet, reply.order);
    const input = {
      req, yiaddr: reply.packet.yiaddr, replyType: reply.packet.options.get(OPT.MSG_TYPE)?.[0] ?? 0, viaProxyPort, source: rinfo,
      boundToOwnAddress: out !== undefined, directedBroadcast: out ? '255.255.255.255' : directedBroadcast(),
    };
    const go = () => {
      let to = replyDestination({ ...input, unicastSubnet: unicast.subnet() });
      // The ARP entry first (the client cannot answer ARP for yiaddr yet); if it cannot be added, broadcast.
      if (to.neighbour && !unicast.install(to.neighbour.ip, to.neighbour.mac)) to = replyDestination(input);
      const via = to.viaOwnAddress && out ? out : sock;
      via.send(buf, to.port, to.address, (err) => { if (err) logger.warn({ err, to }, 'dhcp send failed'); });
    };
    if (config.replyDelayMs > 0) setTimeout(go, config.replyDelayMs); else go();
  }

  async function handle(msg: Buffer, rinfo: RemoteInfo, sock: Socket, viaProxyPort: boolean): Promise<void> {
    const since = process.hrtime.bigint();
    const d = decodeDhcp(msg);
    if (!d.ok) { dhcpMetrics.dropped('malformed'); logger.debug({ from: rinfo.address, reason: d.reason }, 'dhcp packet dropped'); return; }
    const req = d.packet;
    const type = req.options.get(OPT.MSG_TYPE)?.[0];
    if (req.op !== 1 || type === undefined) dhcpMetrics.dropped('not_request');
    else dhcpMetrics.request(type);
    const answer = handleDhcp(req, {
      inv: o.getInventory(), leases: o.leases, config, serverId: o.address, baseUrl: o.baseUrl, now: Date.now(), viaProxyPort,
    });
    if (answer.lease) {
      // Durable before the reply leaves. A shared store may refuse a grant another server made first.
      const { network, reserved } = answer.lease;
      const ok = await o.leases.commit(answer.lease.record, { ...(network !== undefined ? { network } : {}), ...(reserved ? { reserved } : {}) });
      if (!ok) {
        logger.debug({ mac: answer.mac, ip: answer.lease.record.ip }, 'dhcp: address taken meanwhile; no reply (the client retries)');
        o.events.emit({ mac: answer.mac, stage: 'dhcp-ignore', ...(answer.host ? { host: answer.host } : {}), detail: `${answer.lease.record.ip} taken meanwhile` });
        return;
      }
    }
    if (answer.reply) send(sock, answer, req, rinfo, viaProxyPort);
    const { level, msg: text, fields } = answer.log;
    if (logger.isLevelEnabled(level)) logger[level]({ mac: answer.mac, xid: req.xid.toString(16), type: answer.type, ...fields }, text);
    for (const e of answer.events) o.events.emit({ mac: answer.mac, ...(answer.host ? { host: answer.host } : {}), ...e });
    if (type !== undefined && req.op === 1) dhcpMetrics.handled(since);
  }

  function onMessage(sock: Socket, viaProxyPort: boolean) {
    return (msg: Buffer, rinfo: RemoteInfo) => {
      handle(msg, rinfo, sock, viaProxyPort).catch((err: unknown) => { dhcpMetrics.dropped('error'); logger.error({ err, from: rinfo.address }, 'dhcp handling failed'); });
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
  unicast = unicastReplies(config.unicastReplies, o.address, out !== undefined, logger);
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
