/**
 * handleDhcp: one DHCP request in, the whole answer out as values — the reply packet, the lease change
 * to store before it leaves, the boot events and a log line. Pure: the lease store is only read (the
 * transport commits the change and sends the reply only when the store took it), the clock is passed
 * in, and every boot decision comes from planBoot. RFC 2131 §4.3 state rules; PXE spec §2.2.5 proxyDHCP.
 */
import type { DhcpConfig } from '../config.js';
import type { BootStage } from '../events/types.js';
import type { Inventory } from '../inventory/types.js';
import type { LeaseRecord, LeaseStore } from '../state/types.js';
import { planBoot, type BootPlan } from '../boot/plan.js';
import type { MachineFacts } from '../boot/facts.js';
import { macOf, MSG, MSG_NAME, type DhcpPacket } from './packet.js';
import { factsOf, OPT, readIp } from './options.js';
import { buildReply, type ReplyInput } from './reply.js';
import { fromPool, networkOf, reservation, type Address } from './allocate.js';

export const OFFER_HOLD_MS = 60_000;
export const DECLINE_HOLD_MS = 10 * 60_000;

/** What the handler may read of the lease store. */
export type LeaseReader = Pick<LeaseStore, 'byMacLive' | 'holder' | 'lastOf' | 'poolHint' | 'canAllocate'>;

export interface DhcpContext {
  inv: Inventory;
  leases: LeaseReader;
  config: Pick<DhcpConfig, 'mode' | 'leaseTime' | 'serveNonPxe' | 'ipxeNoProxyWait' | 'poolNetwork'>;
  /** Our address: option 54 and siaddr. */
  serverId: string;
  baseUrl: string;
  now: number;
  /** The request came in on the proxyDHCP port (4011). */
  viaProxyPort: boolean;
}

export interface AnswerEvent {
  stage: BootStage;
  address?: string;
  detail?: string;
}

export interface DhcpAnswer {
  mac: string;
  host?: string;
  /** The message type asked, for logs. */
  type?: string;
  reply?: { packet: DhcpPacket; order: number[] };
  /** Store this before the reply leaves; when the store refuses a grant, nothing is sent. */
  lease?: { record: LeaseRecord; network?: string; reserved?: boolean };
  events: AnswerEvent[];
  /** The handler's own line: debug for what its events already say (the boot-event line is the info one). */
  log: { level: 'debug' | 'info' | 'warn'; msg: string; fields?: Record<string, unknown> };
}

let isoAt = NaN;
let isoText = '';
/** now + ms as ISO 8601, the last one kept: under load every request of a millisecond asks for the same. */
function iso(now: number, ms: number): string {
  const t = now + ms;
  if (t !== isoAt) { isoText = new Date(t).toISOString(); isoAt = t; }
  return isoText;
}

function drop(mac: string, msg: string, fields?: Record<string, unknown>): DhcpAnswer {
  return { mac, events: [], log: { level: 'debug', msg, ...(fields ? { fields } : {}) } };
}

export function handleDhcp(req: DhcpPacket, ctx: DhcpContext): DhcpAnswer {
  const type = req.options.get(OPT.MSG_TYPE)?.[0];
  if (req.op !== 1 || type === undefined) return drop('', 'dhcp: not a client request');
  // RFC 2131 §2: Ethernet chaddr is 6 bytes. hlen 0 or 1 would make an empty or one-byte "MAC" hold a lease.
  if (req.htype !== 1 || req.hlen !== 6) return drop('', 'dhcp: not an Ethernet client (htype/hlen)', { htype: req.htype, hlen: req.hlen });
  const mac = macOf(req);
  // A relay's giaddr is its address on the client's segment: one of our networks, or the request is not ours.
  if (req.giaddr !== '0.0.0.0' && !networkOf(ctx.inv, req.giaddr)) return drop(mac, 'dhcp: relayed from a network we do not serve', { giaddr: req.giaddr });
  const facts = factsOf(req, mac, ctx.config.mode === 'proxy' ? 'proxydhcp' : 'dhcp');
  const plan = planOf(facts, ctx.inv, ctx.baseUrl);
  const host = ctx.inv.byMac.get(mac)?.host || undefined;
  const a = ctx.config.mode === 'proxy' ? proxied(req, type, facts, plan, ctx) : authoritative(req, type, facts, plan, ctx, host);
  // One shape for every answer (absent parts undefined): the listener reads each answer's fields on the hot path.
  return { mac, host, type: MSG_NAME[type] ?? String(type), reply: a.reply, lease: a.lease, events: a.events, log: a.log };
}

type Partial = Omit<DhcpAnswer, 'mac' | 'host' | 'type'>;

interface Planned { facts: MachineFacts; baseUrl: string; plan: BootPlan }
/**
 * planBoot's answers per snapshot and MAC, for the facts they were made for: a machine asks again and again
 * with the same facts (DISCOVER then REQUEST, PXE ROM then iPXE, retries, renewals), and the plan is a pure
 * function of the facts, the snapshot and the base URL, so the one made for the same three is the answer.
 * A new snapshot starts afresh; a flood of MACs clears the map rather than grow it.
 */
const plans = new WeakMap<Inventory, Map<string, Planned[]>>();
const MAX_PLANNED_MACS = 20_000;
/** Fact sets kept per MAC (PXE ROM, iPXE, the initramfs's client, proxyDHCP: a handful). */
const MAX_PLANNED_PER_MAC = 8;

function sameFacts(a: MachineFacts, b: MachineFacts): boolean {
  return a.protocol === b.protocol && a.pxe === b.pxe && a.ipxe === b.ipxe && a.arch === b.arch && a.vendorClass === b.vendorClass &&
    a.uuid === b.uuid && a.request === b.request && a.address === b.address;
}

function planOf(facts: MachineFacts, inv: Inventory, baseUrl: string): BootPlan {
  let byMac = plans.get(inv);
  if (!byMac) { byMac = new Map(); plans.set(inv, byMac); }
  const kept = byMac.get(facts.mac);
  if (kept) for (const p of kept) if (p.baseUrl === baseUrl && sameFacts(p.facts, facts)) return p.plan;
  const plan = planBoot(facts, inv, { baseUrl });
  if (kept) { if (kept.length < MAX_PLANNED_PER_MAC) kept.push({ facts, baseUrl, plan }); } else {
    if (byMac.size >= MAX_PLANNED_MACS) byMac.clear();
    byMac.set(facts.mac, [{ facts, baseUrl, plan }]);
  }
  return plan;
}

/** The address this client may have: its reservation, or (unknown MAC the policy boots) the pool. */
function addressFor(ctx: DhcpContext, mac: string, plan: BootPlan, wantsBoot: boolean): Address | undefined {
  const r = reservation(ctx.inv, mac);
  const allowed = wantsBoot || ctx.config.serveNonPxe;
  if (r) return allowed ? r : undefined;
  // Unknown MAC: an address only when the unknown-machine policy boots it — for its PXE ROM, iPXE and
  // the initramfs's own (non-PXE) request alike, so all three get the same pool address.
  if (plan.action !== 'boot' || !allowed || !ctx.leases.canAllocate()) return undefined;
  return fromPool(ctx.inv, ctx.leases, mac, ctx.config.poolNetwork);
}

function replyOf(req: DhcpPacket, type: number, ctx: DhcpContext, facts: MachineFacts, plan: BootPlan, addr: Address | undefined, message?: string) {
  const wantsBoot = facts.pxe || facts.ipxe;
  const input: ReplyInput = {
    req, type, serverId: ctx.serverId, facts, ipxeNoProxyWait: ctx.config.ipxeNoProxyWait,
    ...(addr ? { yiaddr: addr.ip, network: addr.network, leaseTime: ctx.config.leaseTime } : {}),
    ...(addr?.host ? { hostname: addr.host, domain: ctx.inv.site.domain } : {}),
    ...(wantsBoot ? { plan } : {}), ...(message ? { message } : {}),
  };
  return buildReply(input);
}

function authoritative(req: DhcpPacket, type: number, facts: MachineFacts, plan: BootPlan, ctx: DhcpContext, host: string | undefined): Partial {
  const mac = facts.mac;
  const wantsBoot = facts.pxe || facts.ipxe;
  if (type === MSG.DISCOVER) {
    const addr = addressFor(ctx, mac, plan, wantsBoot);
    const discover: AnswerEvent = { stage: 'dhcp-discover', ...(facts.vendorClass ? { detail: facts.vendorClass } : {}) };
    if (!addr) {
      const reason = plan.action === 'ignore' ? plan.reason : !ctx.leases.canAllocate() ? 'shared lease store unreachable: no pool allocation' : 'no address for this client';
      return { events: [discover, { stage: 'dhcp-ignore', detail: reason }], log: { level: 'debug', msg: 'dhcp ignore', fields: { reason } } };
    }
    return {
      reply: replyOf(req, MSG.OFFER, ctx, facts, plan, addr),
      ...(addr.reserved ? {} : { lease: { record: { mac, ip: addr.ip, state: 'offered', expiresAt: iso(ctx.now, OFFER_HOLD_MS) }, ...(addr.network ? { network: addr.network.name } : {}) } }),
      events: [discover, { stage: 'dhcp-offer', address: addr.ip }],
      log: { level: 'debug', msg: 'dhcp offer', fields: { ip: addr.ip, boot: plan.action === 'boot' && wantsBoot ? plan.bootfile : undefined } },
    };
  }
  if (type === MSG.REQUEST) return request(req, facts, plan, ctx);
  if (type === MSG.DECLINE) return decline(req, mac, ctx, host);
  if (type === MSG.RELEASE) {
    // RFC 2131 §4.4.6: the client gives up its own address; only the holder can release it.
    const cur = ctx.leases.byMacLive(mac);
    const ev: AnswerEvent = { stage: 'dhcp-release', address: req.ciaddr };
    if (!cur || cur.ip !== req.ciaddr) return { events: [ev], log: { level: 'debug', msg: 'dhcp release of an address this MAC does not hold: ignored', fields: { ip: req.ciaddr } } };
    return { lease: { record: { ...cur, state: 'released', expiresAt: iso(ctx.now, 0) } }, events: [ev], log: { level: 'debug', msg: 'dhcp release', fields: { ip: req.ciaddr } } };
  }
  if (type === MSG.INFORM) {
    const reply = buildReply({ req, type: MSG.ACK, serverId: ctx.serverId, network: networkOf(ctx.inv, req.ciaddr), facts, ...(wantsBoot ? { plan } : {}) });
    return { reply, events: [{ stage: 'dhcp-inform', address: req.ciaddr }], log: { level: 'debug', msg: 'dhcp inform' } };
  }
  return { events: [], log: { level: 'debug', msg: 'dhcp: message type not for a server', fields: { type } } };
}

/**
 * RFC 2131 §4.3.3: the client found the address in use. Honoured only from the MAC that holds that
 * address (its live lease or its reservation): anyone else's DECLINE would evict a stranger's lease.
 */
function decline(req: DhcpPacket, mac: string, ctx: DhcpContext, host: string | undefined): Partial {
  const ip = readIp(req.options.get(OPT.REQUESTED_IP));
  const ev: AnswerEvent = { stage: 'dhcp-decline', ...(ip ? { address: ip } : {}) };
  if (!ip) return { events: [ev], log: { level: 'debug', msg: 'dhcp decline without an address: ignored' } };
  const holds = ctx.leases.byMacLive(mac)?.ip === ip || reservation(ctx.inv, mac)?.ip === ip;
  if (!holds) return { events: [ev], log: { level: 'warn', msg: 'dhcp decline for an address this MAC does not hold: ignored', fields: { ip } } };
  // A reserved address stays its machine's; the decline is logged for the operator (an address conflict).
  if (host) return { events: [ev], log: { level: 'warn', msg: 'dhcp decline of a reserved address: another host uses it — find the conflict', fields: { ip } } };
  return {
    lease: { record: { mac, ip, state: 'declined', expiresAt: iso(ctx.now, DECLINE_HOLD_MS) } },
    events: [ev], log: { level: 'warn', msg: 'dhcp decline: address in use elsewhere, held back', fields: { ip } },
  };
}

function request(req: DhcpPacket, facts: MachineFacts, plan: BootPlan, ctx: DhcpContext): Partial {
  const mac = facts.mac;
  const serverId = readIp(req.options.get(OPT.SERVER_ID));
  const requested = readIp(req.options.get(OPT.REQUESTED_IP)) ?? (req.ciaddr !== '0.0.0.0' ? req.ciaddr : undefined);
  const ev: AnswerEvent = { stage: 'dhcp-request', ...(requested ? { address: requested } : {}) };
  if (serverId && serverId !== ctx.serverId) {
    // SELECTING another server's offer (RFC 2131 §4.3.2): let our offer go.
    const cur = ctx.leases.byMacLive(mac);
    const lease = cur?.state === 'offered' ? { lease: { record: { ...cur, state: 'released' as const, expiresAt: iso(ctx.now, 0) } } } : {};
    return { ...lease, events: [ev], log: { level: 'debug', msg: 'dhcp request for another server' } };
  }
  const addr = addressFor(ctx, mac, plan, facts.pxe || facts.ipxe);
  const nak = (message: string): Partial => {
    // Only NAK addresses on our networks: a client from elsewhere belongs to another server.
    if (!requested || !networkOf(ctx.inv, requested)) return { events: [ev], log: { level: 'debug', msg: 'dhcp request not ours', fields: { requested, message } } };
    const reply = replyOf(req, MSG.NAK, ctx, facts, plan, undefined, message);
    return { reply, events: [ev, { stage: 'dhcp-nak', address: requested, detail: message }], log: { level: 'debug', msg: 'dhcp nak', fields: { requested, message } } };
  };
  // The shared lease store is unreachable: no pool grant now, but no NAK either — the client keeps the
  // address it may hold and retries (a NAK would tear down every pool lease during an outage).
  if (!addr && !reservation(ctx.inv, mac) && !ctx.leases.canAllocate()) return { events: [ev], log: { level: 'debug', msg: 'dhcp request: shared lease store unreachable, not answered' } };
  if (!addr) return nak('no address for this client');
  if (requested !== addr.ip) return nak(`${requested ?? 'no address'} is not this client's address`);
  const holder = ctx.leases.holder(addr.ip);
  if (holder && holder.mac !== mac) return nak(`${addr.ip} is in use`);
  return {
    reply: replyOf(req, MSG.ACK, ctx, facts, plan, addr),
    // Durable before the ACK leaves: a crash after the commit cannot lose the grant.
    lease: { record: { mac, ip: addr.ip, state: 'bound', expiresAt: iso(ctx.now, ctx.config.leaseTime * 1000), ...(addr.host ? { host: addr.host } : {}) }, ...(addr.network ? { network: addr.network.name } : {}), ...(addr.reserved ? { reserved: true } : {}) },
    events: [ev, { stage: 'dhcp-ack', address: addr.ip }],
    log: { level: 'debug', msg: 'dhcp ack', fields: { ip: addr.ip } },
  };
}

/** proxyDHCP (PXE spec §2.2.5): boot information only, never an address, never a lease. */
function proxied(req: DhcpPacket, type: number, facts: MachineFacts, plan: BootPlan, ctx: DhcpContext): Partial {
  if (plan.action === 'ignore') return { events: [], log: { level: 'debug', msg: 'proxydhcp ignore', fields: { reason: plan.reason } } };
  const reply = (t: number) => buildReply({ req, type: t, serverId: ctx.serverId, plan, facts, ipxeNoProxyWait: false });
  if (type === MSG.DISCOVER && !ctx.viaProxyPort) {
    return { reply: reply(MSG.OFFER), events: [{ stage: 'dhcp-discover', detail: 'proxy' }, { stage: 'dhcp-offer', detail: 'proxy: boot file only' }], log: { level: 'debug', msg: 'proxydhcp offer' } };
  }
  if (type === MSG.REQUEST) return { reply: reply(MSG.ACK), events: [{ stage: 'dhcp-ack', detail: 'proxy: boot file only' }], log: { level: 'debug', msg: 'proxydhcp ack' } };
  return { events: [], log: { level: 'debug', msg: 'proxydhcp: nothing to answer' } };
}
