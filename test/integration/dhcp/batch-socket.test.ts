/**
 * The batched DHCP sockets (native/dhcpio through src/dhcp/batch-socket.ts) on loopback: replies queued in one
 * turn all arrive, byte for byte, with the right source; a datagram longer than a receive slot is reported, not
 * delivered cut; a bind error carries its errno name as node:dgram's do (startup.ts explains EADDRINUSE/EACCES).
 * Under CI=true the addon must be built (scripts/build-native.mjs fails the build otherwise), so nothing skips.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createSocket } from 'node:dgram';
import { BatchSocket, Outbox, type Peer } from '../../../src/dhcp/batch-socket.js';
import { decodeDhcp, encodeDhcp, type DhcpPacket } from '../../../src/dhcp/packet.js';
import { dhcpIo } from '../../../src/native/dhcpio.js';
import { silentLogger } from '../../../src/log.js';

const io = dhcpIo();
const binding = 'binding' in io ? io.binding : undefined;
const open: BatchSocket[] = [];
afterEach(async () => { for (const s of open.splice(0)) await s.close(); });

function reply(xid: number, file = ''): DhcpPacket {
  const chaddr = Buffer.alloc(16);
  chaddr.writeUInt32BE(xid, 2);
  return {
    op: 2, htype: 1, hlen: 6, hops: 0, xid, secs: 0, flags: 0, ciaddr: '0.0.0.0', yiaddr: `10.0.${xid >> 8 & 255}.${xid & 255}`, siaddr: '10.0.0.1',
    giaddr: '0.0.0.0', chaddr, sname: '', file, options: new Map([[53, Buffer.from([2])], [54, Buffer.from([10, 0, 0, 1])], [67, Buffer.from(file || 'x')]]),
  };
}

function socket(onDatagram: (msg: Buffer, from: Peer) => void, onTruncated: (from: Peer, len: number) => void = () => {}): BatchSocket {
  const s = BatchSocket.open(binding!, '127.0.0.1', 0, 1 << 20, new Outbox(), silentLogger(), onDatagram, onTruncated);
  open.push(s);
  return s;
}

describe.skipIf(!binding && process.env.CI !== 'true')('batched DHCP sockets', () => {
  it('the addon is there (a CI build without it fails here)', () => {
    expect(io).toHaveProperty('binding');
  });

  it('delivers every reply queued in one turn, byte for byte, from the sending socket', async () => {
    const got: Array<{ msg: Buffer; from: Peer }> = [];
    const b = socket((msg, from) => got.push({ msg: Buffer.from(msg), from }));
    const a = socket(() => {});
    const N = 150; // more than one sendmmsg batch (64) and one receive batch
    // Different sizes (a long boot file name) so the send buffer holds packets of several lengths.
    for (let i = 0; i < N; i++) a.sendReply(reply(i, i % 3 ? '' : `ipxe-${'y'.repeat(i)}.efi`.slice(0, 120)), undefined, b.port, '127.0.0.1');
    const deadline = Date.now() + 5000;
    while (got.length < N && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(got.length).toBe(N);
    for (const { msg, from } of got) {
      expect(from).toEqual({ address: '127.0.0.1', port: a.port });
      const d = decodeDhcp(msg);
      expect(d.ok).toBe(true);
      if (!d.ok) continue;
      const xid = d.packet.xid;
      const want = reply(xid, xid % 3 ? '' : `ipxe-${'y'.repeat(xid)}.efi`.slice(0, 120));
      expect(msg.equals(encodeDhcp(want))).toBe(true); // the arena's reuse leaves no bytes of an earlier packet
    }
    expect(new Set(got.map((g) => decodeDhcp(g.msg).ok && (decodeDhcp(g.msg) as { packet: DhcpPacket }).packet.xid)).size).toBe(N);
  });

  it('reports a datagram longer than its receive slot instead of delivering it cut', async () => {
    const got: Buffer[] = [];
    const cut: number[] = [];
    const b = socket((msg) => got.push(Buffer.from(msg)), (_from, len) => cut.push(len));
    const c = createSocket('udp4');
    await new Promise<void>((r) => c.bind(0, '127.0.0.1', () => r()));
    await new Promise<void>((r, j) => c.send(Buffer.alloc(6000, 1), b.port, '127.0.0.1', (e) => (e ? j(e) : r())));
    await new Promise<void>((r, j) => c.send(Buffer.alloc(300, 2), b.port, '127.0.0.1', (e) => (e ? j(e) : r())));
    const deadline = Date.now() + 5000;
    while (got.length + cut.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    c.close();
    expect(cut.length).toBe(1);
    expect(cut[0]).toBeGreaterThan(4096);
    expect(got).toEqual([Buffer.alloc(300, 2)]);
  });

  it('a bind error carries its errno name', async () => {
    const c = createSocket({ type: 'udp4', reuseAddr: false });
    await new Promise<void>((r) => c.bind(0, '127.0.0.1', () => r()));
    try {
      expect(() => BatchSocket.open(binding!, '127.0.0.1', c.address().port, 0, new Outbox(), silentLogger(), () => {}, () => {}))
        .toThrow(expect.objectContaining({ code: 'EADDRINUSE', syscall: 'bind' }));
      expect(() => BatchSocket.open(binding!, '192.0.2.77', 0, 0, new Outbox(), silentLogger(), () => {}, () => {}))
        .toThrow(expect.objectContaining({ code: 'EADDRNOTAVAIL' }));
    } finally { c.close(); }
  });
});
