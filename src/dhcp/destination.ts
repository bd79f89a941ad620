/**
 * replyDestination: where a reply goes, RFC 2131 §4.1 as a table (pure).
 *   giaddr set                     → the relay, port 67 (it forwards to the client)
 *   came in on 4011 (proxyDHCP)    → back to the sender's address and port (PXE spec §2.2.5)
 *   ciaddr set, not a NAK          → unicast to ciaddr, port 68 (RENEWING, INFORM)
 *   broadcast bit clear, Ethernet, not a NAK, and we can add neighbour entries on the arrival link
 *                                  → unicast to yiaddr, port 68, after the ARP entry yiaddr → chaddr
 *   otherwise                      → broadcast, port 68
 * The unicast case needs an ARP entry for a client that cannot answer ARP yet (native/neigh, CAP_NET_ADMIN):
 * in a boot storm every broadcast wakes every waiting client, unicast only the one it is for. A client
 * that cannot take unicast before it has an address sets the broadcast bit (OVMF's PXE does). The limited broadcast
 * (255.255.255.255) leaves through the socket bound to our own address, which Linux sends out of the
 * interface that owns it; OVMF's PXE accepts only that, not the subnet's directed broadcast. Without
 * that socket (our address not configured here, e.g. tests on loopback) the directed broadcast is used.
 */
import { MSG, type DhcpPacket } from './packet.js';

export interface DestinationInput {
  req: Pick<DhcpPacket, 'giaddr' | 'ciaddr'> & Partial<Pick<DhcpPacket, 'flags' | 'htype' | 'hlen' | 'chaddr'>>;
  /** The reply's yiaddr (0.0.0.0 in proxyDHCP replies). */
  yiaddr?: string;
  /**
   * The arrival interface's subnet when the server can install neighbour entries there (else undefined:
   * broadcast). A yiaddr outside it would not go out of that link.
   */
  unicastSubnet?: { address: string; prefix: number };
  replyType: number;
  /** The request came in on the proxyDHCP port; its source is where the reply goes. */
  viaProxyPort: boolean;
  source: { address: string; port: number };
  /** A socket bound to our own address exists (limited broadcast leaves on the right link). */
  boundToOwnAddress: boolean;
  /** The directed broadcast of our provisioning network, for when no such socket exists. */
  directedBroadcast: string;
}

export interface Destination {
  address: string;
  port: number;
  /** Send through the socket bound to our own address (else through the socket the request came in on). */
  viaOwnAddress: boolean;
  /** Install this ARP entry on the arrival interface before sending (unicast to a client without an address). */
  neighbour?: { ip: string; mac: string };
}

const BROADCAST_FLAG = 0x8000;
const HTYPE_ETHERNET = 1;

const u32 = (ip: string): number => ip.split('.').reduce((a, o) => a * 256 + Number(o), 0);

function inSubnet(ip: string, net: { address: string; prefix: number }): boolean {
  const size = 2 ** (32 - net.prefix);
  return Math.floor(u32(ip) / size) === Math.floor(u32(net.address) / size);
}

/** chaddr as aa:bb:cc:dd:ee:ff when the client may take a unicast reply to yiaddr (RFC 2131 §4.1), else undefined. */
function unicastMac(i: DestinationInput): string | undefined {
  const { req, yiaddr, unicastSubnet } = i;
  if (!unicastSubnet || !yiaddr || yiaddr === '0.0.0.0' || i.replyType === MSG.NAK) return undefined;
  if (req.flags === undefined || (req.flags & BROADCAST_FLAG) !== 0) return undefined;
  if (req.htype !== HTYPE_ETHERNET || req.hlen !== 6 || !req.chaddr || req.chaddr.length < 6) return undefined;
  if (!inSubnet(yiaddr, unicastSubnet)) return undefined;
  return [...req.chaddr.subarray(0, 6)].map((b) => b.toString(16).padStart(2, '0')).join(':');
}

export function replyDestination(i: DestinationInput): Destination {
  const own = i.boundToOwnAddress && !i.viaProxyPort;
  if (i.req.giaddr !== '0.0.0.0') return { address: i.req.giaddr, port: 67, viaOwnAddress: own };
  if (i.viaProxyPort) return { address: i.source.address, port: i.source.port, viaOwnAddress: false };
  if (i.req.ciaddr !== '0.0.0.0' && i.replyType !== MSG.NAK) return { address: i.req.ciaddr, port: 68, viaOwnAddress: own };
  const mac = own ? unicastMac(i) : undefined;
  if (mac) return { address: i.yiaddr!, port: 68, viaOwnAddress: true, neighbour: { ip: i.yiaddr!, mac } };
  return { address: i.boundToOwnAddress ? '255.255.255.255' : i.directedBroadcast, port: 68, viaOwnAddress: own };
}
