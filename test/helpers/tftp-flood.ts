/**
 * A hostile TFTP sender for the abandonment test (run inside the attacker's namespace): from each of
 * the given addresses, N read requests each from its own port (`timeout 255`), never answered. The
 * sockets stay open, so the server gets no ICMP "port unreachable" that would end its sessions early.
 * Prints one JSON line when every request is out: {"sent", "sessions" (answered with OACK/DATA), "refused"}.
 * Usage: node --import tsx tftp-flood.ts SERVER PORT FILE PER_ADDRESS ADDRESS...
 */
import { createSocket, type Socket } from 'node:dgram';
import { encodeRequest } from '../../src/tftp/packet.js';

const [server, portText, file, perText, ...addresses] = process.argv.slice(2);
const port = Number(portText);
const per = Number(perText);
const socks: Socket[] = [];
/** Sockets that got an OACK or DATA (a session), an ERROR (refused), or nothing yet. */
const sessions = new Set<Socket>();
const refused = new Set<Socket>();
let sent = 0;

async function one(address: string): Promise<Socket> {
  const s = createSocket('udp4');
  socks.push(s);
  // Opcode 5 = ERROR (refused); 6 = OACK and 3 = DATA mean the server opened a session.
  s.on('message', (m) => { if (m[1] === 5) refused.add(s); else sessions.add(s); });
  s.on('error', () => undefined);
  await new Promise<void>((r) => s.bind(0, address, () => r()));
  await new Promise<void>((r) => s.send(encodeRequest('RRQ', file!, 'octet', { timeout: '255', blksize: '1468' }), port, server!, () => r()));
  sent++;
  return s;
}

// One request per address per round; the next round once this one is answered (or after 300 ms), so
// the requests reach the server instead of overflowing its socket buffer.
for (let i = 0; i < per; i++) {
  const round = await Promise.all(addresses.map((a) => one(a)));
  const until = Date.now() + 300;
  while (Date.now() < until && round.some((s) => !sessions.has(s) && !refused.has(s))) await new Promise((r) => setTimeout(r, 5));
}
process.stdout.write(`${JSON.stringify({ sent, sessions: sessions.size, refused: refused.size })}\n`);
// Hold the sockets until the test ends this process.
setInterval(() => undefined, 60_000);
