/** Real TFTP clients nobody here wrote (tftp-hpa, atftp, curl) against rolecast on 127.0.0.1. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { startFixture, type Fixture } from './fixture.js';
import { commandExists, inCI, runAsync } from '../../helpers/netns.js';

let fx: Fixture;
beforeAll(async () => { fx = await startFixture({}, 40 * 1024 * 1024); });
afterAll(async () => { await fx.close(); });

const need = ['tftp', 'atftp', 'curl'].filter((c) => !commandExists(c));
if (need.length && inCI) throw new Error(`missing TFTP clients: ${need.join(', ')}`);

function out(name: string): string {
  const p = join(fx.dir, `out-${name.replace(/\//g, '_')}-${Math.random().toString(36).slice(2)}`);
  if (existsSync(p)) rmSync(p);
  return p;
}

const small = ['empty.bin', 'one.bin', 'exact512.bin', 'exact1468.bin', 'undionly.kpxe', 'sub/kernel.img'];

describe.skipIf(need.length > 0)('real clients fetch byte-identical files', () => {
  it.each(small)('tftp-hpa: %s (no options)', async (f) => {
    const o = out(f);
    const r = await runAsync('tftp', ['-m', 'binary', '127.0.0.1', String(fx.server.port), '-c', 'get', f, o], 60_000);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(readFileSync(o).equals(fx.files[f]!)).toBe(true);
  });

  it.each(small)('atftp with blksize, tsize and windowsize 8: %s', async (f) => {
    const o = out(f);
    const r = await runAsync('atftp', ['--option', 'blksize 1428', '--option', 'tsize 0', '--option', 'windowsize 8', '-g', '-r', f, '-l', o, '127.0.0.1', String(fx.server.port)], 60_000);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(readFileSync(o).equals(fx.files[f]!)).toBe(true);
  });

  // curl 7.88 fails every 0-byte TFTP file with a getpeername() error, against tftpd-hpa too: a curl bug.
  it.each(small.filter((f) => f !== 'empty.bin'))('curl tftp:// with --tftp-blksize 1024: %s', async (f) => {
    const o = out(f);
    const r = await runAsync('curl', ['-sS', '--tftp-blksize', '1024', '-o', o, `tftp://127.0.0.1:${fx.server.port}/${f}`], 60_000);
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(o).equals(fx.files[f]!)).toBe(true);
  });

  it('tftp-hpa fetches 40 MiB at blksize 512: block numbers roll over past 65535', async () => {
    const o = out('big');
    const r = await runAsync('tftp', ['-m', 'binary', '127.0.0.1', String(fx.server.port), '-c', 'get', 'big.bin', o], 240_000);
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(o).equals(fx.files['big.bin']!)).toBe(true);
    expect(fx.files['big.bin']!.length / 512).toBeGreaterThan(65536);
  }, 240_000);

  it('a missing file is an immediate ERROR 1', async () => {
    const r = await runAsync('curl', ['-sS', '-o', '/dev/null', `tftp://127.0.0.1:${fx.server.port}/nope.bin`], 20_000);
    expect(r.code, r.stderr).toBe(68); // CURLE_TFTP_NOTFOUND: the server answered ERROR 1
  });

  it('traversal attempts get an error and nothing from outside the root', async () => {
    for (const f of ['../secret.txt', 'sub/../../secret.txt', 'escape.txt', '/etc/passwd', '..\\secret.txt']) {
      const o = out('trav');
      const r = await runAsync('tftp', ['-m', 'binary', '127.0.0.1', String(fx.server.port), '-c', 'get', f, o], 20_000);
      const got = existsSync(o) ? readFileSync(o, 'utf8') : '';
      expect(got, f).not.toContain('outside the root');
      expect(got, f).not.toContain('root:');
      expect(r.stdout + r.stderr, f).toMatch(/Error code [12]/);
    }
  });
});
