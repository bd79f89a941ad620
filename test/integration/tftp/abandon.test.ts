/**
 * Abandoned read requests (issue 16 item 2) on loopback: `timeout 255` with back-off held a slot for
 * hours, and 2,000 slots at 16 per address filled from 125 addresses, locking real clients out.
 * The flood here comes from 100 addresses in 127.0.0.0/8 and never answers; a fresh client must still
 * be served, and a silent client's session must end after the stall cap whatever timeout it asked for.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createSocket, type Socket } from 'node:dgram';
import { startFixture, type Fixture } from './fixture.js';
import { tftpGet } from '../../helpers/tftp-client.js';
import { waitFor } from '../../helpers/netns.js';
import { decode, encodeRequest } from '../../../src/tftp/packet.js';

let fx: Fixture | undefined;
const socks: Socket[] = [];
afterEach(async () => {
  for (const s of socks.splice(0)) s.close();
  await fx?.close();
  fx = undefined;
});

/** A socket bound to `address` that sends one RRQ and then listens without ever answering. */
async function abandon(port: number, address: string, options: Record<string, string>, got?: (m: Buffer) => void): Promise<void> {
  const s = createSocket('udp4');
  socks.push(s);
  if (got) s.on('message', got);
  await new Promise<void>((r) => s.bind(0, address, () => r()));
  await new Promise<void>((r) => s.send(encodeRequest('RRQ', 'undionly.kpxe', 'octet', options), port, '127.0.0.1', () => r()));
}

describe('TFTP abandonment', () => {
  it('a timeout above the cap is not acknowledged, and a silent client ends after the stall cap', async () => {
    fx = await startFixture({ timeoutMs: 100, retries: 1000, maxStallMs: 400 });
    const replies: Buffer[] = [];
    await abandon(fx.server.port, '127.0.0.1', { timeout: '255', blksize: '1468' }, (m) => replies.push(m));
    await waitFor(() => replies.length > 0, 2000);
    const first = decode(replies[0]!);
    expect(first).toEqual({ op: 'OACK', options: { blksize: '1468' } });
    expect(fx.server.stats().active).toBe(1);
    const t0 = Date.now();
    await waitFor(() => fx!.server.stats().active === 0, 3000, 20);
    // 1000 retries at 100 ms (with back-off) would be many minutes: the stall cap ends it.
    expect(Date.now() - t0).toBeLessThan(2000);
  });

  it('400 abandoned requests from 100 addresses fill every slot; a fresh client is still served within 2 s', async () => {
    fx = await startFixture({ maxTransfers: 50, maxTransfersPerClient: 4, timeoutMs: 1000, maxStallMs: 60_000 });
    for (let a = 0; a < 100; a++) {
      for (let i = 0; i < 4; i++) await abandon(fx.server.port, `127.1.0.${a + 1}`, { timeout: '255' });
    }
    await waitFor(() => fx!.server.stats().active >= 50, 5000, 20);
    const t0 = Date.now();
    const r = await tftpGet(fx.server.port, 'undionly.kpxe', { options: { blksize: '1468' }, timeoutMs: 200 });
    const took = Date.now() - t0;
    expect(r.error).toBeUndefined();
    expect(r.data.equals(fx.files['undionly.kpxe']!)).toBe(true);
    expect(took).toBeLessThan(2000);
    expect(fx.server.stats().evicted).toBeGreaterThan(0);
  }, 30_000);
});
