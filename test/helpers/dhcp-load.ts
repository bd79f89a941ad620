/**
 * Many distinct DHCP clients at once, each a full DORA with retries, for load and failover tests where
 * every grant must be checked afterwards (perfdhcp only counts). Run inside a client namespace:
 *   node --import tsx test/helpers/dhcp-load.ts COUNT [WINDOW] [TIMEOUT_MS] [MAC_BYTE]
 * (MACS=mac,mac,... in the environment: exactly those clients instead of COUNT generated ones;
 * TARGET=the subnet's broadcast address when the namespace has no route for 255.255.255.255)
 * DISCOVER and REQUEST are broadcast, so every server on the segment sees them (as from a real NIC).
 * The first OFFER wins; a client that hears nothing for 1.5 s starts over with a new xid (a server
 * killed between OFFER and ACK is survived that way). Prints one JSON line per ACK
 * ({"ack":MAC,"ip":...,"server":...,"reqAt":ms}, reqAt the wall-clock time the ACKed REQUEST was sent) and a summary line ({"done":N,"total":N,"retries":N,"ms":N}).
 */
import { createSocket } from 'node:dgram';
import { decodeDhcp, encodeDhcp, type DhcpPacket } from '../../src/dhcp/packet.js';

interface Client { mac: string; xid: number; phase: 'discover' | 'request' | 'done'; sent: number; server?: string; ip?: string }

const [countText = '100', windowText = '200', timeoutText = '60000', macByte = '01'] = process.argv.slice(2);
const count = Number(countText);
const window = Number(windowText);
const deadline = Date.now() + Number(timeoutText);
const RETRY_MS = 1500;

function packet(c: Client, type: number, extra: Array<[number, Buffer]> = []): Buffer {
  const chaddr = Buffer.alloc(16);
  Buffer.from(c.mac.replace(/:/g, ''), 'hex').copy(chaddr);
  const options = new Map<number, Buffer>([[53, Buffer.from([type])], [60, Buffer.from('PXEClient:Arch:00000:UNDI:002001')], [93, Buffer.from([0, 0])], ...extra]);
  const p: DhcpPacket = { op: 1, htype: 1, hlen: 6, hops: 0, xid: c.xid, secs: 0, flags: 0x8000, ciaddr: '0.0.0.0', yiaddr: '0.0.0.0', siaddr: '0.0.0.0', giaddr: '0.0.0.0', chaddr, sname: '', file: '', options };
  return encodeDhcp(p);
}

const ipb = (a: string) => Buffer.from(a.split('.').map(Number));
const out = (o: unknown) => process.stdout.write(`${JSON.stringify(o)}\n`);

const hex = (n: number) => (n & 255).toString(16).padStart(2, '0');
const macs = process.env.MACS ? process.env.MACS.split(',') : Array.from({ length: count }, (_, i) => `52:54:${macByte}:${hex(i >> 16)}:${hex(i >> 8)}:${hex(i)}`);
const clients: Client[] = macs.map((mac) => ({ mac, xid: 0, phase: 'discover', sent: 0 }));
const byXid = new Map<number, Client>();
let next = 0;
let active = 0;
let done = 0;
let retries = 0;
const started = Date.now();
const sock = createSocket({ type: 'udp4', reuseAddr: true });

function send(buf: Buffer): void {
  sock.send(buf, 67, process.env.TARGET ?? '255.255.255.255');
}

function discover(c: Client): void {
  byXid.delete(c.xid);
  c.xid = Math.floor(Math.random() * 2 ** 32);
  byXid.set(c.xid, c);
  c.phase = 'discover';
  c.sent = Date.now();
  delete c.server;
  send(packet(c, 1));
}

function fill(): void {
  while (active < window && next < clients.length) {
    active++;
    discover(clients[next++]!);
  }
}

sock.on('message', (m) => {
  const d = decodeDhcp(m);
  if (!d.ok || d.packet.op !== 2) return;
  const p = d.packet;
  const c = byXid.get(p.xid);
  const type = p.options.get(53)?.[0];
  const sid = p.options.get(54);
  if (!c || !sid) return;
  const server = [...sid].join('.');
  if (type === 2 && c.phase === 'discover') {
    c.phase = 'request';
    c.server = server;
    c.ip = p.yiaddr;
    c.sent = Date.now();
    send(packet(c, 3, [[50, ipb(p.yiaddr)], [54, sid]]));
  } else if (type === 5 && c.phase === 'request' && server === c.server) {
    c.phase = 'done';
    byXid.delete(c.xid);
    active--;
    done++;
    out({ ack: c.mac, ip: p.yiaddr, server, reqAt: c.sent });
    fill();
  } else if (type === 6 && c.phase === 'request' && server === c.server) {
    retries++;
    discover(c);
  }
});

function finish(): void {
  out({ done, total: clients.length, retries, ms: Date.now() - started });
  sock.close();
}

sock.bind(68, '0.0.0.0', () => {
  sock.setBroadcast(true);
  fill();
  const tick = setInterval(() => {
    const now = Date.now();
    if (done === clients.length || now > deadline) { clearInterval(tick); finish(); return; }
    for (const c of [...byXid.values()]) {
      if (c.phase !== 'done' && now - c.sent > RETRY_MS) { retries++; discover(c); }
    }
  }, 100);
});
