/**
 * replyDestination: where a reply goes, RFC 2131 §4.1 as a table (pure).
 *   giaddr set                     → the relay, port 67 (it forwards to the client)
 *   came in on 4011 (proxyDHCP)    → back to the sender's address and port (PXE spec §2.2.5)
 *   ciaddr set, not a NAK          → unicast to ciaddr, port 68 (RENEWING, INFORM)
 *   otherwise                      → broadcast, port 68
 * The RFC would allow unicast to yiaddr when the broadcast bit is clear, but that needs an ARP entry
 * for an unconfigured client, which Node cannot add: broadcast it is. The limited broadcast
 * (255.255.255.255) leaves through the socket bound to our own address, which Linux sends out of the
 * interface that owns it; OVMF's PXE accepts only that, not the subnet's directed broadcast. Without
 * that socket (our address not configured here, e.g. tests on loopback) the directed broadcast is used.
 */
import { MSG, type DhcpPacket } from './packet.js';

export interface DestinationInput {
  req: Pick<DhcpPacket, 'giaddr' | 'ciaddr'>;
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
}

export function replyDestination(i: DestinationInput): Destination {
  const own = i.boundToOwnAddress && !i.viaProxyPort;
  if (i.req.giaddr !== '0.0.0.0') return { address: i.req.giaddr, port: 67, viaOwnAddress: own };
  if (i.viaProxyPort) return { address: i.source.address, port: i.source.port, viaOwnAddress: false };
  if (i.req.ciaddr !== '0.0.0.0' && i.replyType !== MSG.NAK) return { address: i.req.ciaddr, port: 68, viaOwnAddress: own };
  return { address: i.boundToOwnAddress ? '255.255.255.255' : i.directedBroadcast, port: 68, viaOwnAddress: own };
}
