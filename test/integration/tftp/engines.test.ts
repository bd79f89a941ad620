/**
 * Both transfer engines on real UDP sockets: files go through the native engine (native/tftp) when it is
 * built, rendered configs and every file without it through the JS sessions (src/tftp/session.ts). The
 * robustness battery (robust.test.ts) runs on the native engine where it is built (it checks so); this
 * file runs the core of it on the JS sessions (ROLECAST_TFTP_ENGINE=js, read once per process, so set
 * before the server module loads).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tftpGet } from '../../helpers/tftp-client.js';
import type { Fixture } from './fixture.js';

let fx: Fixture;
beforeAll(async () => {
  process.env.ROLECAST_TFTP_ENGINE = 'js';
  const { startFixture } = await import('./fixture.js');
  fx = await startFixture({ timeoutMs: 50, retries: 8 });
});
afterAll(async () => { await fx.close(); delete process.env.ROLECAST_TFTP_ENGINE; });

describe('TFTP JS sessions (ROLECAST_TFTP_ENGINE=js; no addon)', () => {
  it.each([
    ['lock-step, dropped DATA and ACKs', { dropData: 0.05, dropAck: 0.05, duplicateAcks: true, options: { blksize: '1468' } }],
    ['windowed, dropped DATA and ACKs', { dropData: 0.05, dropAck: 0.05, duplicateAcks: true, options: { blksize: '1024', windowsize: '8' } }],
  ] as const)('%s: byte-identical', async (_n, o) => {
    let s = 7;
    const rand = () => { s = (s * 1103515245 + 12345) % 2 ** 31; return s / 2 ** 31; };
    const r = await tftpGet(fx.server.port, 'undionly.kpxe', { ...o, rand, timeoutMs: 60 });
    expect(r.error).toBeUndefined();
    expect(r.data.equals(fx.files['undionly.kpxe']!)).toBe(true);
    expect(fx.server.stats().native).toBe(0);
  });

  it('a file cut short mid-transfer: ERROR 0 to the client, never a short block', async () => {
    const { expectReadError } = await import('./fixture.js');
    await expectReadError(fx);
    expect(fx.server.stats().native).toBe(0);
  });

  it('the size probe (ERROR 8 after the OACK) is not a failure', async () => {
    const before = fx.server.stats().failed;
    const probe = await tftpGet(fx.server.port, 'sub/kernel.img', { options: { tsize: '0', blksize: '1468' }, abortAfterOack: true });
    expect(probe.oack?.tsize).toBe(String(fx.files['sub/kernel.img']!.length));
    await new Promise((r) => setTimeout(r, 50));
    expect(fx.server.stats().failed).toBe(before);
  });
});

