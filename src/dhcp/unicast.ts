/**
 * Unicast replies to clients without an address (RFC 2131 §4.1, broadcast bit clear): the transport's half.
 * replyDestination decides; this finds the arrival interface and installs the ARP entry yiaddr → chaddr there
 * before the send, as dnsmasq does. Node's dgram gives no IP_PKTINFO, so the arrival interface is the one that
 * owns the listener's address (replies leave through the socket bound to it). Without CAP_NET_ADMIN or the addon
 * every reply is broadcast for the life of the process, said once at info.
 */
import { networkInterfaces } from 'node:os';
import type { Logger } from '../log.js';
import { neighbourTable, type NeighbourTable } from '../native/neigh.js';

export interface UnicastReplies {
  /** The arrival interface's subnet while unicast is possible; undefined: broadcast. */
  subnet(): { address: string; prefix: number } | undefined;
  /** Installs the ARP entry; false: send this reply as a broadcast instead. */
  install(ip: string, mac: string): boolean;
}

const OFF: UnicastReplies = { subnet: () => undefined, install: () => false };

/** Errors that will not go away while the process runs: stop trying. */
const FOR_GOOD = new Set(['EPERM', 'EACCES', 'ENOSYS', 'EOPNOTSUPP', 'ENOTSUP', 'EAFNOSUPPORT']);

/** The interface that owns address, with its subnet (os.networkInterfaces of this network namespace). */
export function interfaceOf(address: string): { name: string; address: string; prefix: number } | undefined {
  for (const [name, addrs] of Object.entries(networkInterfaces())) {
    const a = addrs?.find((x) => x.family === 'IPv4' && x.address === address && !x.internal);
    if (a?.cidr) return { name, address: a.address, prefix: Number(a.cidr.split('/')[1]) };
  }
  return undefined;
}

export function unicastReplies(mode: 'auto' | 'off', address: string, haveOwnSocket: boolean, logger: Logger,
  open: () => ReturnType<typeof neighbourTable> = neighbourTable): UnicastReplies {
  const off = (why: string): UnicastReplies => {
    logger.info({ address, why }, 'dhcp: replies to clients without an address are broadcast');
    return OFF;
  };
  if (mode === 'off') return off('dhcp.unicastReplies is off');
  if (!haveOwnSocket) return off(`no socket bound to ${address}`);
  const t = open();
  if ('unavailable' in t) return off(`${t.unavailable}; unicast to yiaddr needs it (see README, DHCP unicast replies)`);
  const table: NeighbourTable = t.table;
  // os.networkInterfaces() lists only running links: a bridge without an active port, or a NIC without
  // carrier at start, shows up later. Our address is local (the reply socket is bound to it), so look again,
  // at most once a second, until it appears.
  let iface: ReturnType<typeof interfaceOf>;
  let lookedAt = 0;
  let disabled = false;
  const find = () => {
    if (iface || disabled || Date.now() - lookedAt < 1000) return iface;
    lookedAt = Date.now();
    iface = interfaceOf(address);
    if (iface) logger.info({ address, interface: iface.name }, 'dhcp: unicast replies to clients that clear the broadcast bit');
    return iface;
  };
  if (!find()) logger.info({ address }, 'dhcp: replies are broadcast until the interface holding the address is up (then unicast where allowed)');
  return {
    subnet: () => { const i = find(); return i ? { address: i.address, prefix: i.prefix } : undefined; },
    install(ip, mac) {
      if (disabled || !iface) return false;
      const err = table.set(iface.name, ip, Buffer.from(mac.replace(/:/g, ''), 'hex'));
      if (!err) return true;
      if (FOR_GOOD.has(err)) {
        logger.info({ address, interface: iface.name, err }, 'dhcp: cannot add ARP entries; replies to clients without an address are broadcast from now on');
        disabled = true;
        iface = undefined;
      } else {
        logger.debug({ ip, mac, interface: iface.name, err }, 'dhcp: ARP entry not added; this reply is broadcast');
      }
      return false;
    },
  };
}
