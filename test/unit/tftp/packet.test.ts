import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { decode, encodeAck, encodeData, encodeError, encodeOack, encodeRequest } from '../../../src/tftp/packet.js';
import { negotiate } from '../../../src/tftp/options.js';

const hex = (h: string) => Buffer.from(h.replace(/\s+/g, ''), 'hex');

describe('TFTP codec', () => {
  it('decodes an RRQ as OVMF sends it (tsize 0, blksize 1468, windowsize 4)', () => {
    const wire = Buffer.concat([hex('0001'), Buffer.from('ipxe.efi\0octet\0tsize\x000\0blksize\x001468\0windowsize\x004\0', 'latin1')]);
    expect(decode(wire)).toEqual({ op: 'RRQ', filename: 'ipxe.efi', mode: 'octet', options: { tsize: '0', blksize: '1468', windowsize: '4' } });
  });

  it('option names are case-insensitive and the first of a repeated option wins (RFC 2347)', () => {
    const wire = encodeRequest('RRQ', 'f', 'OCTET', { BlkSize: '1024' });
    const again = Buffer.concat([wire, Buffer.from('blksize\x00512\0', 'latin1')]);
    expect(decode(again)).toEqual({ op: 'RRQ', filename: 'f', mode: 'octet', options: { blksize: '1024' } });
  });

  it('round-trips every packet kind', () => {
    expect(decode(encodeData(65535, Buffer.from('abc')))).toEqual({ op: 'DATA', block: 65535, data: Buffer.from('abc') });
    expect(decode(encodeData(65536, Buffer.alloc(0)))).toEqual({ op: 'DATA', block: 0, data: Buffer.alloc(0) });
    expect(decode(encodeAck(7))).toEqual({ op: 'ACK', block: 7 });
    expect(decode(encodeError(1, 'File not found'))).toEqual({ op: 'ERROR', code: 1, message: 'File not found' });
    expect(decode(encodeOack({ blksize: '1468', tsize: '42' }))).toEqual({ op: 'OACK', options: { blksize: '1468', tsize: '42' } });
    expect(decode(encodeRequest('WRQ', 'x', 'netascii'))).toEqual({ op: 'WRQ', filename: 'x', mode: 'netascii', options: {} });
  });

  it.each([
    ['empty', '', 'shorter than an opcode'],
    ['one byte', '00', 'shorter than an opcode'],
    ['unknown opcode', '0009', 'unknown opcode 9'],
    ['RRQ without NUL', '0001 6162', 'request strings are not NUL-terminated'],
    ['RRQ empty name', '0001 00 6f6374657400', 'empty file name'],
    ['RRQ without mode', '0001 6100', 'missing mode'],
    ['RRQ bad mode', '0001 6100 7a00', 'unknown mode "z"'],
    ['RRQ option without value', '0001 6100 6f6374657400 626c6b73697a6500', 'option without a value'],
    ['short DATA', '0003 00', 'DATA without a block number'],
    ['short ACK', '0004', 'ACK without a block number'],
    ['short ERROR', '0005 00', 'ERROR without a code'],
  ])('malformed: %s', (_n, h, reason) => {
    expect(decode(hex(h))).toEqual({ op: 'INVALID', reason });
  });

  it('never throws on arbitrary bytes (fuzz)', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
      const d = decode(Buffer.from(bytes));
      expect(typeof d.op).toBe('string');
    }), { numRuns: 3000 });
  });

  it('re-encodes what it decodes (fuzz over requests)', () => {
    const name = fc.stringMatching(/^[a-zA-Z0-9._/-]{1,40}$/);
    fc.assert(fc.property(name, fc.dictionary(fc.stringMatching(/^[a-z]{1,10}$/), fc.stringMatching(/^[0-9]{1,6}$/)), (f, opts) => {
      const d = decode(encodeRequest('RRQ', f, 'octet', opts));
      expect(d).toEqual({ op: 'RRQ', filename: f, mode: 'octet', options: opts });
    }));
  });
});

describe('option negotiation', () => {
  const limits = { maxBlksize: 1468, maxWindowsize: 64, timeoutMs: 1000, maxTimeoutS: 10 };
  it.each([
    ['no options: RFC 1350 transfer, no OACK', {}, { blksize: 512, windowsize: 1, timeoutMs: 1000, oack: {} }],
    ['blksize clamped to the MTU-safe maximum', { blksize: '9000' }, { blksize: 1468, oack: { blksize: '1468' } }],
    ['blksize below 8 ignored', { blksize: '4' }, { blksize: 512, oack: {} }],
    ['tsize answered with the size', { tsize: '0' }, { oack: { tsize: '12345' } }],
    ['timeout accepted up to the cap', { timeout: '3' }, { timeoutMs: 3000, oack: { timeout: '3' } }],
    ['timeout at the cap accepted', { timeout: '10' }, { timeoutMs: 10_000, oack: { timeout: '10' } }],
    // Issue 16: timeout 255 was acknowledged, so an abandoned request held its slot for hours.
    ['timeout above the cap left out (RFC 2349: same value or none)', { timeout: '255' }, { timeoutMs: 1000, oack: {} }],
    ['timeout above 255 ignored', { timeout: '256' }, { timeoutMs: 1000, oack: {} }],
    ['timeout 0 ignored', { timeout: '0' }, { timeoutMs: 1000, oack: {} }],
    ['windowsize clamped', { windowsize: '1000' }, { windowsize: 64, oack: { windowsize: '64' } }],
    ['garbage values ignored', { blksize: '12ab', windowsize: '-1', tsize: 'x' }, { blksize: 512, windowsize: 1, oack: {} }],
    ['unknown options left out', { multicast: '', blksize: '1024' }, { oack: { blksize: '1024' } }],
  ])('%s', (_n, req, want) => {
    expect(negotiate(req, 12345, limits)).toMatchObject(want);
  });
});
