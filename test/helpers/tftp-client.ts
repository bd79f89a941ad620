/**
 * A small TFTP read client for tests that real clients cannot drive: windowsize, hundreds of
 * concurrent transfers, and deliberate loss (drop DATA, drop or duplicate ACKs) on real UDP sockets.
 */
import { createSocket } from 'node:dgram';
import { decode, encodeAck, encodeError, encodeRequest } from '../../src/tftp/packet.js';

export interface GetOptions {
  options?: Record<string, string>;
  /** Probability of ignoring a received DATA packet (as if lost). */
  dropData?: number;
  /** Probability of not sending an ACK (as if lost). */
  dropAck?: number;
  /** Wait this long before each ACK (a client on a slow link). */
  ackDelayMs?: number;
  /** Send every ACK twice. */
  duplicateAcks?: boolean;
  /** Send ERROR 8 right after the OACK, like OVMF's size probe. */
  abortAfterOack?: boolean;
  timeoutMs?: number;
  rand?: () => number;
  /** Called with each in-order DATA block's number as it arrives. */
  onBlock?: (block: number) => void;
}

export interface GetResult {
  data: Buffer;
  oack?: Record<string, string>;
  error?: { code: number; message: string };
}

export function tftpGet(port: number, file: string, o: GetOptions = {}): Promise<GetResult> {
  const rand = o.rand ?? Math.random;
  const sock = createSocket('udp4');
  const chunks: Buffer[] = [];
  let expected = 1; // internal block number (wraps on the wire)
  let blksize = 512;
  let windowsize = 1;
  let inWindow = 0;
  let oack: Record<string, string> | undefined;
  let peer: { port: number; address: string } | undefined;
  return new Promise((resolve, reject) => {
    let idleRounds = 0;
    const retry = () => {
      // Give up after ~40 silent timeouts: a test must fail, not hang.
      if (++idleRounds > 40) return done(new Error(`tftpGet ${file} from port ${port}: no answer`));
      if (peer) ack(expected - 1); else sock.send(encodeRequest('RRQ', file, 'octet', o.options), port, '127.0.0.1');
    };
    let idle = setInterval(retry, o.timeoutMs ?? 300);
    // Close only after queued sends have gone out: closing at once can drop the final ACK.
    let finished = false;
    const done = (r: GetResult | Error) => { finished = true; clearInterval(idle); setTimeout(() => sock.close(), 20); if (r instanceof Error) reject(r); else resolve(r); };
    const ack = (n: number) => {
      if (o.ackDelayMs) { setTimeout(() => sendAck(n), o.ackDelayMs); return; }
      sendAck(n);
    };
    const sendAck = (n: number) => {
      if (!peer || rand() < (o.dropAck ?? 0)) return;
      sock.send(encodeAck(n & 0xffff), peer.port, peer.address);
      if (o.duplicateAcks) sock.send(encodeAck(n & 0xffff), peer.port, peer.address);
    };
    sock.on('message', (msg, from) => {
      if (finished) return; // a late retransmission after the last block: the transfer is over
      peer ??= { port: from.port, address: from.address };
      const p = decode(msg);
      if (p.op === 'ERROR') return done({ data: Buffer.concat(chunks), oack, error: { code: p.code, message: p.message } });
      if (p.op === 'OACK') {
        oack = p.options;
        if (o.abortAfterOack) { sock.send(encodeError(8, 'size probe only'), from.port, from.address); return done({ data: Buffer.alloc(0), oack }); }
        blksize = Number(p.options.blksize ?? 512);
        windowsize = Number(p.options.windowsize ?? 1);
        return ack(0);
      }
      if (p.op !== 'DATA' || rand() < (o.dropData ?? 0)) return;
      clearInterval(idle);
      idleRounds = 0;
      idle = setInterval(retry, o.timeoutMs ?? 300);
      if (p.block !== (expected & 0xffff)) return; // out of order: wait for the sender's timeout / our re-ACK
      chunks.push(p.data);
      o.onBlock?.(expected);
      expected++;
      inWindow++;
      const last = p.data.length < blksize;
      if (last || inWindow >= windowsize) { inWindow = 0; ack(expected - 1); }
      if (last) done({ data: Buffer.concat(chunks), oack });
    });
    sock.bind(0, '127.0.0.1', () => sock.send(encodeRequest('RRQ', file, 'octet', o.options), port, '127.0.0.1'));
  });
}
