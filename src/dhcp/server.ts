/**
 * The DHCP listener: the only DHCP code that touches node:dgram. It moves bytes: decode, ask the pure
 * handleDhcp (src/dhcp/handle.ts) for the answer, commit its lease change to the state layer, send the
 * reply where replyDestination (src/dhcp/destination.ts) says, record its events. Modes: authoritative,
 * proxy (on 67 and 4011, beside a DHCP server we do not own), off.
 *
 * Node cannot bind a socket to a device, so replies leave through a second socket bound to the
 * listener's own address (port 67, SO_REUSEADDR): Linux sends a 255.255.255.255 datagram out of the
 * interface that owns its source address (OVMF accepts only the limited broadcast).
 *
 * Bytes move through the batched datagram addon when it is built (src/dhcp/batch-socket.ts: recvmmsg and
 * sendmmsg, one system call per batch), else through node:dgram (dhcp.batchIo: off forces that).
 */
import { createSocket } from 'node:dgram';
import type { DhcpConfig } from '../config.js';
import type { EventSink } from '../events/types.js';
import type { Logger } from '../log.js';
import type { Inventory } from '../inventory/types.js';
import type { LeaseStore } from '../state/types.js';
import { decodeDhcp, encodeDhcp, macOf, type DhcpPacket } from './packet.js';
import { BatchSocket, Outbox, type DhcpSocket, type OnDatagram, type Peer } from './batch-socket.js';
import { dhcpIo } from '../native/dhcpio.js';
import { OPT } from './options.js';
import { handleDhcp, type AnswerEvent } from './handle.js';
import { replyDestination, type DestinationInput } from './destination.js';
import { unicastReplies, type UnicastReplies } from './unicast.js';
import { networkOf } from './allocate.js';
import { intToIp, ipToInt } from '../inventory/ip.js';
import { RepeatedAnswers } from './repeat.js';
import { warmInBackground, warmUp } from './warm.js';

/** Where the listener counts (src/metrics.ts on the main thread; the DHCP thread batches them to it). */
export interface DhcpMetricsSink {
  request(type: number): void;
  dropped(reason: 'malformed' | 'not_request' | 'error'): void;
  /** `since` from performance.now() at receipt (a double: no BigInt made twice per request, as hrtime.bigint did). */
  handled(since: number): void;
}

/** A reply to send: its packet, or (a retransmission's answer) its bytes; yiaddr and type pick the destination. */
type Reply = { yiaddr: string; type: number } & ({ packet: DhcpPacket; order: number[] } | { bytes: Uint8Array });

/** A retransmission (same MAC, xid, type) within this long of our answer gets that answer again (src/dhcp/repeat.ts). */
export const REPEAT_WINDOW_MS = 2000;

export interface DhcpServerOptions {
  config: DhcpConfig;
  address: string; // option 54 and siaddr
  baseUrl: string;
  getInventory: () => Inventory;
  leases: LeaseStore;
  events: EventSink;
  logger: Logger;
  metrics: DhcpMetricsSink;
  /** 0: decide every retransmission again. */
  repeatWindowMs?: number;
  /**
   * Opens the sockets instead of node:dgram or the batched addon (a harness that moves the bytes itself). Its
   * sendBytes must copy the bytes at once, as the batched socket does (they are a view of the repeat cache).
   */
  openSocket?: (address: string, port: number, onDatagram: OnDatagram, label: string) => Promise<DhcpSocket>;
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

/** A node:dgram socket bound to address:port (the fall-back when the batched addon is not there). */
function dgramSocket(address: string, port: number, onDatagram: OnDatagram, logger: Logger, label: string): Promise<DhcpSocket> {
  const sock = createSocket({ type: 'udp4', reuseAddr: true });
  return new Promise((resolve, reject) => {
    sock.once('error', reject);
    sock.bind(port, address, () => {
      sock.off('error', reject);
      sock.setBroadcast(true);
      try { sock.setRecvBufferSize(RECV_BUFFER); } catch { /* the kernel's default then */ }
      sock.on('message', (msg, rinfo) => onDatagram(msg, rinfo));
      sock.on('error', (err) => logger.error({ err }, `${label} socket error`));
      resolve({
        port: sock.address().port,
        sendReply(packet, order, toPort, toAddress) {
          sock.send(encodeDhcp(packet, order), toPort, toAddress, (err) => { if (err) logger.warn({ err, to: { address: toAddress, port: toPort } }, 'dhcp send failed'); });
        },
        sendBytes(bytes, toPort, toAddress) {
          sock.send(bytes, toPort, toAddress, (err) => { if (err) logger.warn({ err, to: { address: toAddress, port: toPort } }, 'dhcp send failed'); });
        },
        close: () => new Promise<void>((r) => sock.close(() => r())),
      });
    });
  });
}

type BootEventInput = Parameters<EventSink['emit']>[0];

/** A boot event of the answer's machine: keys in the order the journal has always had (mac, host, stage, address, detail). */
function eventOf(mac: string, host: string | undefined, e: AnswerEvent): BootEventInput {
  const ev: BootEventInput = host ? { mac, host, stage: e.stage } : { mac, stage: e.stage };
  if (e.address !== undefined) ev.address = e.address;
  if (e.detail !== undefined) ev.detail = e.detail;
  return ev;
}

export async function startDhcpServer(o: DhcpServerOptions): Promise<DhcpServer> {
  const { config, logger, metrics: dhcpMetrics } = o;
  const repeats = new RepeatedAnswers(o.repeatWindowMs ?? REPEAT_WINDOW_MS);
  const io = config.batchIo === 'off' ? { unavailable: 'dhcp.batchIo is off' } : dhcpIo();
  const outbox = new Outbox();
  /** The batched sockets copy a reply's bytes into their send buffer when asked to send it; node:dgram does not. */
  const copyOnSend = !('binding' in io) || config.replyDelayMs > 0;
  const open = (address: string, port: number, onDatagram: OnDatagram, label: string): Promise<DhcpSocket> => {
    if (o.openSocket) return o.openSocket(address, port, onDatagram, label);
    if (!('binding' in io)) return dgramSocket(address, port, onDatagram, logger, label);
    const truncated = (from: Peer, length: number) => { dhcpMetrics.dropped('malformed'); logger.debug({ from: from.address, length }, 'dhcp packet dropped: longer than the receive slot'); };
    return Promise.resolve(BatchSocket.open(io.binding, address, port, RECV_BUFFER, outbox, logger, onDatagram, truncated));
  };
  let out: DhcpSocket | undefined; // bound to o.address:port when that address is ours
  let unicast: UnicastReplies = { subnet: () => undefined, install: () => false };

  const directedBroadcast = () => {
    const net = networkOf(o.getInventory(), o.address);
    const base = net ? ipToInt(net.address) : undefined;
    return net && base !== undefined ? intToIp(base + 2 ** (32 - net.prefix) - 1) : '255.255.255.255';
  };

  /** Sends a reply (a packet, or the bytes of one made before) to where RFC 2131 §4.1 says for this request. */
  function send(sock: DhcpSocket, reply: Reply, req: DhcpPacket, from: Peer, viaProxyPort: boolean): void {
    if (config.replyDelayMs > 0) setTimeout(() => sendNow(sock, reply, req, from, viaProxyPort), config.replyDelayMs);
    else sendNow(sock, reply, req, from, viaProxyPort);
  }

  function sendNow(sock: DhcpSocket, reply: Reply, req: DhcpPacket, from: Peer, viaProxyPort: boolean): void {
    const input: DestinationInput = {
      req, yiaddr: reply.yiaddr, replyType: reply.type, viaProxyPort, source: from, unicastSubnet: unicast.subnet(),
      boundToOwnAddress: out !== undefined, directedBroadcast: out ? '255.255.255.255' : directedBroadcast(),
    };
    let to = replyDestination(input);
    // The ARP entry first (the client cannot answer ARP for yiaddr yet); if it cannot be added, broadcast.
    if (to.neighbour && !unicast.install(to.neighbour.ip, to.neighbour.mac)) { input.unicastSubnet = undefined; to = replyDestination(input); }
    const via = to.viaOwnAddress && out ? out : sock;
    if ('bytes' in reply) via.sendBytes(reply.bytes, to.port, to.address);
    else via.sendReply(reply.packet, reply.order, to.port, to.address);
  }

  async function handle(msg: Buffer, from: Peer, sock: DhcpSocket, viaProxyPort: boolean): Promise<void> {
    const since = performance.now();
    const d = decodeDhcp(msg); // copies what it keeps: msg may be a view of a receive buffer reused after this turn
    if (!d.ok) { dhcpMetrics.dropped('malformed'); logger.debug({ from: from.address, reason: d.reason }, 'dhcp packet dropped'); return; }
    const req = d.packet;
    const type = req.options.get(OPT.MSG_TYPE)?.[0];
    if (req.op !== 1 || type === undefined) dhcpMetrics.dropped('not_request');
    else dhcpMetrics.request(type);
    const inv = o.getInventory();
    const now = Date.now();
    const key = type !== undefined && req.op === 1 && req.hlen === 6 ? { chaddr: req.chaddr, xid: req.xid, type, length: msg.length, viaProxyPort } : undefined;
    const again = key !== undefined ? repeats.get(key, now, inv) : undefined;
    if (again) {
      // A view of the cache's arena, as for a fresh answer: copied when the send does not copy at once.
      send(sock, copyOnSend ? { ...again, bytes: Buffer.from(again.bytes) } : again, req, from, viaProxyPort);
      if (logger.isLevelEnabled('debug')) logger.debug({ mac: macOf(req), xid: req.xid.toString(16), type }, 'dhcp: retransmission, answered as before');
      dhcpMetrics.handled(since);
      return;
    }
    const answer = handleDhcp(req, { inv, leases: o.leases, config, serverId: o.address, baseUrl: o.baseUrl, now, viaProxyPort });
    if (answer.lease) {
      // Durable before the reply leaves. A shared store may refuse a grant another server made first.
      const { network, reserved } = answer.lease;
      const ok = await o.leases.commit(answer.lease.record, { network, reserved });
      if (!ok) {
        logger.debug({ mac: answer.mac, ip: answer.lease.record.ip }, 'dhcp: address taken meanwhile; no reply (the client retries)');
        o.events.emit({ mac: answer.mac, stage: 'dhcp-ignore', ...(answer.host ? { host: answer.host } : {}), detail: `${answer.lease.record.ip} taken meanwhile` });
        return;
      }
    }
    if (answer.reply) {
      const { packet, order } = answer.reply;
      const reply = { packet, order, yiaddr: packet.yiaddr, type: packet.options.get(OPT.MSG_TYPE)?.[0] ?? 0 };
      // Kept for a retransmission, and sent from the kept bytes (encoded once). Those are a view of the
      // cache's arena: a send that does not copy them at once (node:dgram queues its buffer; a delayed reply)
      // gets a copy of its own.
      const kept = key !== undefined ? repeats.put(key, now, inv, reply) : undefined;
      if (!kept) send(sock, reply, req, from, viaProxyPort);
      else send(sock, { bytes: copyOnSend ? Buffer.from(kept) : kept, yiaddr: reply.yiaddr, type: reply.type }, req, from, viaProxyPort);
    }
    const { level, msg: text, fields } = answer.log;
    if (logger.isLevelEnabled(level)) logger[level]({ mac: answer.mac, xid: req.xid.toString(16), type: answer.type, ...fields }, text);
    for (const e of answer.events) o.events.emit(eventOf(answer.mac, answer.host, e));
    if (type !== undefined && req.op === 1) dhcpMetrics.handled(since);
  }

  /** A socket whose requests are handled (and answered through it unless the destination says otherwise). */
  const listen = async (address: string, port: number, viaProxyPort: boolean, label: string): Promise<DhcpSocket> => {
    const ref: { sock?: DhcpSocket } = {}; // set before any datagram can arrive: the socket polls once bound
    ref.sock = await open(address, port, (msg, from) => {
      handle(msg, from, ref.sock!, viaProxyPort).catch((err: unknown) => { dhcpMetrics.dropped('error'); logger.error({ err, from: from.address }, 'dhcp handling failed'); });
    }, label);
    return ref.sock;
  };

  // The request path compiled and warm before the first client waits on it (src/dhcp/warm.ts).
  try {
    warmUp({ inv: o.getInventory(), config, serverId: o.address, baseUrl: o.baseUrl });
  } catch (err) {
    logger.debug({ err }, 'dhcp warm-up failed (answers start cold)');
  }
  const main = await listen(config.bind, config.port, false, 'dhcp');
  if (config.bind === '0.0.0.0' && config.port !== 0) {
    try {
      // Unicast to our address (renewals, relays) lands here: handled like the main socket's requests.
      out = await listen(o.address, config.port, false, 'dhcp send');
    } catch (err) {
      logger.warn({ err, address: o.address }, 'cannot bind the reply socket to the listener address: replies go to the directed broadcast');
    }
  }
  unicast = unicastReplies(config.unicastReplies, o.address, out !== undefined, logger);
  const proxy = config.mode === 'proxy' ? await listen(config.bind, config.proxyPort, true, 'proxydhcp') : undefined;
  logger.info({ mode: config.mode, port: main.port, address: o.address, io: 'binding' in io ? 'batched (recvmmsg/sendmmsg)' : `node:dgram (${io.unavailable})` }, 'dhcp listening');
  const stopWarming = warmInBackground(() => ({ inv: o.getInventory(), config, serverId: o.address, baseUrl: o.baseUrl }));
  return {
    port: main.port,
    close: async () => {
      stopWarming();
      await main.close();
      if (out) await out.close();
      if (proxy) await proxy.close();
    },
  };
}
