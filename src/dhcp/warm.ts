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

const none: LeaseReader = { byMacLive: () => undefined, holder: () => undefined, lastOf: () => undefined, poolHint: () => undefined, canAllocate: () => false };

function request(type: number, mac: string, ip: string | undefined, serverId: string, ipxe: boolean): Buffer {
  const chaddr = Buffer.alloc(16);
  mac.split(':').forEach((h, i) => { chaddr[i] = parseInt(h, 16); });
  const options = new Map<number, Buffer>([[OPT.MSG_TYPE, Buffer.from([type])], [OPT.VENDOR_CLASS, Buffer.from('PXEClient:Arch:00000:UNDI:002001')],
    [OPT.CLIENT_ARCH, Buffer.from([0, 0])], [OPT.PARAMS, Buffer.from([1, 3, 6, 12, 15, 43, 60, 66, 67])]]);
  if (ipxe) options.set(OPT.USER_CLASS, Buffer.from('iPXE'));
  if (type === MSG.REQUEST && ip) {
    options.set(OPT.REQUESTED_IP, Buffer.from(ip.split('.').map(Number)));
    options.set(OPT.SERVER_ID, Buffer.from(serverId.split('.').map(Number)));
  }
  const p: DhcpPacket = { op: 1, htype: 1, hlen: 6, hops: 0, xid: 1, secs: 0, flags: 0x8000, ciaddr: '0.0.0.0', yiaddr: '0.0.0.0',
    siaddr: '0.0.0.0', giaddr: '0.0.0.0', chaddr, sname: '', file: '', options };
  return encodeDhcp(p);
}

/** Runs the request path `rounds` times over a DISCOVER and a REQUEST (PXE ROM and iPXE) of the snapshot's first machine. */
export function warmUp(ctx: Omit<DhcpContext, 'leases' | 'now' | 'viaProxyPort'>, rounds = 250): void {
  const m = ctx.inv.machines[0];
  const mac = m?.macs[0] ?? '52:54:00:00:00:01';
  const serverId = ctx.serverId;
  const reqs = [false, true].flatMap((ipxe) => [request(MSG.DISCOVER, mac, m?.ip, serverId, ipxe), request(MSG.REQUEST, mac, m?.ip, serverId, ipxe)]);
  const repeats = new RepeatedAnswers(1000, 16); // its own: the listener's is not touched
  const now = Date.now();
  for (let i = 0; i < rounds; i++) {
    for (const bytes of reqs) {
      const d = decodeDhcp(bytes);
      if (!d.ok) return;
      const type = d.packet.options.get(OPT.MSG_TYPE)?.[0] ?? 0;
      const id = { chaddr: d.packet.chaddr, xid: d.packet.xid, type, length: bytes.length, viaProxyPort: false };
      repeats.get(id, now, ctx.inv);
      const answer = handleDhcp(d.packet, { ...ctx, leases: none, now, viaProxyPort: false });
      if (answer.reply) repeats.put(id, now, ctx.inv, { ...answer.reply, yiaddr: answer.reply.packet.yiaddr, type });
    }
  }
}

/**
 * More of the same once the listener answers, a slice per turn (requests that come meanwhile are answered
 * between slices): the 250 rounds before listening compile the small functions, but V8 optimises the large
 * ones (handleDhcp, buildReply, decodeDhcp, authoritative) only after ~500 rounds, so they were compiled
 * under the first real requests — the first second's slow OFFERs at 1000/s, and ~400 ms of compiler threads
 * in bench:dhcp's 5 s window. ~75 ms of the DHCP thread once, after the start, not in its way. Returns a stop.
 */
export function warmInBackground(ctx: () => Omit<DhcpContext, 'leases' | 'now' | 'viaProxyPort'>, rounds = 750, slice = 25): () => void {
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
