/**
 * A scriptable DHCP client for what udhcpc/dhclient cannot do: many MACs at once, raw DORA steps,
 * collecting every OFFER (proxyDHCP next to another server). Run inside a client namespace:
 *   node --import tsx test/helpers/dhcp-probe.ts burst N | offers | repeat N
 * (repeat: one DISCOVER per MAC, sent again with the same xid 1 s later, as a client whose OFFER was late.
 * overrun: the first MAC's DISCOVER, sent again 300 ms later with the same xid, followed at once by one
 * DISCOVER from each other MAC: fresh answers that overrun the server's retransmission cache while the
 * retransmission's answer may still be waiting to leave.)
 * It prints one JSON line per event on stdout.
 */
import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { decodeDhcp, encodeDhcp, type DhcpPacket } from '../../src/dhcp/packet.js';

function request(mac: string, type: number, extra: Array<[number, Buffer]> = [], xid = Math.floor(Math.random() * 2 ** 32)): Buffer {
  const chaddr = Buffer.alloc(16);
  Buffer.from(mac.replace(/:/g, ''), 'hex').copy(chaddr);
  const options = new Map<number, Buffer>([[53, Buffer.from([type])], [60, Buffer.from('PXEClient:Arch:00000:UNDI:002001')], [93, Buffer.from([0, 0])], ...extra]);
  const p: DhcpPacket = { op: 1, htype: 1, hlen: 6, hops: 0, xid, secs: 0, flags: 0x8000, ciaddr: '0.0.0.0', yiaddr: '0.0.0.0', siaddr: '0.0.0.0', giaddr: '0.0.0.0', chaddr, sname: '', file: '', options };
  return encodeDhcp(p);
}

const ipb = (a: string) => Buffer.from(a.split('.').map(Number));
const out = (o: unknown) => process.stdout.write(`${JSON.stringify(o)}\n`);

async function main(): Promise<void> {
  const [mode, nText, target = '255.255.255.255'] = process.argv.slice(2);
  const sock = createSocket({ type: 'udp4', reuseAddr: true });
  await new Promise<void>((r) => sock.bind(68, '0.0.0.0', () => { sock.setBroadcast(true); r(); }));
  // Bursts of replies (overrun: 1,200 OFFERs whose delayed sends fire together) overflowed the default 208 KB:
  // the kernel dropped the probe's datagrams (Udp RcvbufErrors in the client namespace), not the server.
  try { sock.setRecvBufferSize(4 << 20); } catch { /* capped by net.core.rmem_max: the default then */ }
  const n = Number(nText ?? 1);
  // PROBE_MAC_OCTET: a different set of MACs per run (tests that run several bursts on one server).
  const macs = Array.from({ length: n }, (_, i) => `52:54:00:${process.env.PROBE_MAC_OCTET ?? '77'}:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`);
  sock.on('message', (m, from) => {
    const d = decodeDhcp(m);
    if (!d.ok || d.packet.op !== 2) return;
    const p = d.packet;
    const mac = [...p.chaddr.subarray(0, 6)].map((b) => b.toString(16).padStart(2, '0')).join(':');
    const type = p.options.get(53)?.[0];
    const server = p.options.get(54);
    out({ type, mac, from: from.address, yiaddr: p.yiaddr, siaddr: p.siaddr, file: p.file, bootfile: p.options.get(67)?.toString(), vendor: p.options.get(60)?.toString(), server: server ? [...server].join('.') : undefined });
    if (mode === 'burst' && type === 2 && server) sock.send(request(mac, 3, [[50, ipb(p.yiaddr)], [54, server]], p.xid), 67, target);
    // proxyDHCP (PXE spec §2.2.5): after the address, ask the proxy on 4011 for the boot file.
    if (mode === 'offers' && type === 2 && server && p.yiaddr === '0.0.0.0') sock.send(request(mac, 3, [[54, server]], p.xid), 4011, [...server].join('.'));
  });
  if (mode === 'overrun') {
    const first = request(macs[0]!, 1, [], 0x0f0f0f0f);
    sock.send(first, 67, target);
    setTimeout(() => {
      sock.send(first, 67, target);
      for (const mac of macs.slice(1)) sock.send(request(mac, 1), 67, target);
    }, 300);
  } else if (mode === 'repeat') {
    const xids = macs.map((_, i) => 0x5eed0000 + i);
    macs.forEach((mac, i) => sock.send(request(mac, 1, [], xids[i]), 67, target));
    setTimeout(() => macs.forEach((mac, i) => sock.send(request(mac, 1, [], xids[i]), 67, target)), 1000);
  } else {
    for (const mac of macs) sock.send(request(mac, 1), 67, target);
  }
  setTimeout(() => {
    sock.close();
    // PROBE_SNMP: this namespace's UDP counters (RcvbufErrors: replies the probe's socket had no room for).
    if (process.env.PROBE_SNMP) process.stderr.write(`snmp ${readFileSync('/proc/net/snmp', 'utf8').split('\n').filter((l) => l.startsWith('Udp:')).join(' | ')}\n`);
  }, Number(process.env.PROBE_MS ?? 4000));
}

void main();
