/**
 * Warm-up of the DHCP path before the listener answers anyone. The first requests after a start ran the
 * codec, handleDhcp, planBoot and buildReply cold (parsed and compiled on first call, then in the
 * interpreter) and queued the requests behind them: at 1000 exchanges/s the first ~50 ms of OFFERs came
 * tens of milliseconds late, which was the whole of the p99 (bench:dhcp's slow OFFERs by second). Here
 * the same functions run on made-up requests first. Pure: nothing is committed, sent, logged or recorded
 * (handleDhcp only reads the lease view given, an empty one here).
 */
import type { DhcpContext, LeaseReader } from './handle.js';
import { handleDhcp } from './handle.js';
import { decodeDhcp, encodeDhcp, MSG, type DhcpPacket } from './packet.js';
import { OPT } from './options.js';
import { RepeatedAnswers } from './repeat.js';
import { networkOf } from './allocate.js';

const none: LeaseReader = { byMacLive: () => undefined, holder: () => undefined, lastOf: () => undefined, poolHint: () => undefined, canAllocate: () => false };

/**
 * A request as clients send them: a PXE ROM or iPXE on the segment (broadcast bit set), or relayed (giaddr,
 * hops 1, a client identifier, as perfdhcp and most routers' relays send them). Warming with one shape only
 * left V8's feedback unable to take the other: the functions were optimised, then deoptimised by the first
 * real requests (--trace-deopt under bench:dhcp: decodeDhcp, handleDhcp, authoritative, buildReply, the
 * retransmission cache), and compiled again while those requests waited.
 */
function request(type: number, mac: string, ip: string | undefined, serverId: string, ipxe: boolean, giaddr: string | undefined): Buffer {
  const chaddr = Buffer.alloc(16);
  mac.split(':').forEach((h, i) => { chaddr[i] = parseInt(h, 16); });
  const options = new Map<number, Buffer>([[OPT.MSG_TYPE, Buffer.from([type])]]);
  if (type === MSG.REQUEST && ip) {
    options.set(OPT.REQUESTED_IP, Buffer.from(ip.split('.').map(Number)));
    options.set(OPT.SERVER_ID, Buffer.from(serverId.split('.').map(Number)));
  }
  options.set(OPT.PARAMS, Buffer.from(giaddr ? [1, 28, 2, 3, 15, 6, 12] : [1, 3, 6, 12, 15, 43, 60, 66, 67]));
  options.set(OPT.VENDOR_CLASS, Buffer.from('PXEClient:Arch:00000:UNDI:002001'));
  if (giaddr) options.set(OPT.CLIENT_ID, Buffer.concat([Buffer.from([1]), chaddr.subarray(0, 6)]));
  else options.set(OPT.CLIENT_ARCH, Buffer.from([0, 0]));
  if (ipxe) options.set(OPT.USER_CLASS, Buffer.from('iPXE'));
  const p: DhcpPacket = { op: 1, htype: 1, hlen: 6, hops: giaddr ? 1 : 0, xid: 1, secs: 0, flags: giaddr ? 0 : 0x8000, ciaddr: '0.0.0.0', yiaddr: '0.0.0.0',
    siaddr: '0.0.0.0', giaddr: giaddr ?? '0.0.0.0', chaddr, sname: '', file: '', options };
  return encodeDhcp(p);
}

/**
 * Runs the request path `rounds` times over a DISCOVER and a REQUEST (PXE ROM, iPXE, and relayed) of the
 * snapshot's first machines, with xids across the whole 32-bit range (as clients draw them).
 */
export function warmUp(ctx: Omit<DhcpContext, 'leases' | 'now' | 'viaProxyPort'>, rounds = 60): void {
  const serverId = ctx.serverId;
  const machines = ctx.inv.machines.slice(0, 4);
  const who = machines.length ? machines.map((m) => ({ mac: m.macs[0] ?? '52:54:00:00:00:01', ip: m.ip })) : [{ mac: '52:54:00:00:00:01', ip: undefined }];
  // A relay's address on one of our networks (a machine's own address will do): else handleDhcp drops it.
  const relay = who[0]?.ip !== undefined && networkOf(ctx.inv, who[0].ip) ? who[0].ip : undefined;
  const reqs = who.flatMap(({ mac, ip }) => [false, true, ...(relay ? ['relay' as const] : [])].flatMap((kind) => {
    const g = kind === 'relay' ? relay : undefined;
    return [request(MSG.DISCOVER, mac, ip, serverId, kind === true, g), request(MSG.REQUEST, mac, ip, serverId, kind === true, g)];
  }));
  const repeats = new RepeatedAnswers(1000, 16); // its own: the listener's is not touched
  const now = Date.now();
  for (let i = 0; i < rounds; i++) {
    for (let r = 0; r < reqs.length; r++) {
      const bytes = reqs[r]!;
      bytes.writeUInt32BE(Math.imul(i * reqs.length + r + 1, 0x9e3779b1) >>> 0, 4); // the xid
      const d = decodeDhcp(bytes);
      if (!d.ok) return;
      const req = d.packet;
      const type = req.options.get(OPT.MSG_TYPE)?.[0] ?? 0;
      // Objects of the listener's shapes (src/dhcp/server.ts): a context or key of another shape is another map to V8.
      const id = { chaddr: req.chaddr, xid: req.xid, type, length: bytes.length, viaProxyPort: false };
      repeats.get(id, now, ctx.inv);
      const answer = handleDhcp(req, { inv: ctx.inv, leases: none, config: ctx.config, serverId: ctx.serverId, baseUrl: ctx.baseUrl, now, viaProxyPort: false });
      if (answer.reply) {
        const { packet, order } = answer.reply;
        repeats.put(id, now, ctx.inv, { packet, order, yiaddr: packet.yiaddr, type: packet.options.get(OPT.MSG_TYPE)?.[0] ?? 0 });
      }
    }
  }
}

/**
 * More of the same once the listener answers, a slice per turn (requests that come meanwhile are answered
 * between slices, ~50 requests' worth of work each): the rounds before listening (~1,400 requests) compile
 * the small functions, but V8 optimises the large ones (handleDhcp, buildReply, decodeDhcp, authoritative)
 * only after a few thousand calls, so they were compiled under the first real requests — the first second's
 * slow OFFERs at 1000/s, and ~400 ms of compiler threads in bench:dhcp's 5 s window. Returns a stop.
 */
export function warmInBackground(ctx: () => Omit<DhcpContext, 'leases' | 'now' | 'viaProxyPort'>, rounds = 150, slice = 2): () => void {
  let left = rounds;
  let timer: NodeJS.Immediate | undefined;
  const step = () => {
    timer = undefined;
    try {
      warmUp(ctx(), Math.min(slice, left));
    } catch {
      return; // the start-up warm-up said why, if it failed too
    }
    left -= slice;
    if (left > 0) timer = setImmediate(step);
  };
  timer = setImmediate(step);
  return () => { if (timer) clearImmediate(timer); timer = undefined; };
}
