/**
 * Hostile battery, TFTP abandonment (issue 16 item 2), against `rolecast serve` with its default limits
 * (2,000 transfers, 16 per address): 10,000 read requests asking `timeout 255` from 200 addresses, none
 * ever answered; then a fresh client (curl, a real TFTP client) must get its file within 2 s.
 * Before the fix a fresh client was still refused 51 s later.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import { describeSystem, Lab, waitFor } from '../../helpers/netns.js';

const ROOT = resolve(import.meta.dirname, '../../..');
const ADDRESSES = Array.from({ length: 200 }, (_, i) => `10.9.${1 + (i >> 8)}.${(i & 0xff) + 1}`);
const PER_ADDRESS = 50;

describeSystem('hostile: TFTP abandonment flood', ['curl'], () => {
  const lab = new Lab('tflood');
  const dir = mkdtempSync(join(tmpdir(), 'rolecast-tflood-'));
  const payload = randomBytes(300_000);
  let srv: string;
  let atk: string;
  let proc: ChildProcess;
  let log = '';

  beforeAll(async () => {
    srv = lab.ns('s');
    atk = lab.ns('a');
    lab.veth(srv, 'rc0', atk, 'rc1');
    lab.addr(srv, 'rc0', '10.9.0.1/16');
    for (const a of [...ADDRESSES, '10.9.99.1']) lab.addr(atk, 'rc1', `${a}/16`);
    mkdirSync(join(dir, 'root'));
    writeFileSync(join(dir, 'root', 'loader.bin'), payload);
    writeFileSync(join(dir, 'rolecast.yaml'), [
      `profilesDir: ${join(ROOT, 'test/fixtures/profiles')}`, `dataDir: ${join(dir, 'data')}`, `imagesDir: ${join(dir, 'images')}`,
      'address: 10.9.0.1', 'dhcp:\n  mode: off', `tftp:\n  roots: [${join(dir, 'root')}]`, 'http:\n  port: 8080', '',
    ].join('\n'));
    proc = lab.spawn(srv, process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli.ts'), 'serve', '--config', join(dir, 'rolecast.yaml')], { cwd: ROOT });
    proc.stdout?.on('data', (d: Buffer) => { log += d.toString(); });
    proc.stderr?.on('data', (d: Buffer) => { log += d.toString(); });
    await waitFor(() => log.includes('rolecast serving') || proc.exitCode !== null, 30_000);
    expect(log).toContain('rolecast serving');
  }, 60_000);

  afterAll(async () => { await lab.cleanup(); });

  it('10,000 abandoned RRQs from 200 addresses, then a fresh client is served within 2 s', async () => {
    const flood = lab.spawn(atk, process.execPath, ['--import', 'tsx', join(ROOT, 'test/helpers/tftp-flood.ts'), '10.9.0.1', '69', 'loader.bin', String(PER_ADDRESS), ...ADDRESSES], { cwd: ROOT });
    let out = '';
    flood.stdout?.on('data', (d: Buffer) => { out += d.toString(); });
    flood.stderr?.on('data', (d: Buffer) => { out += d.toString(); });
    await waitFor(() => out.includes('"sent"') || flood.exitCode !== null, 90_000, 100);
    const report = JSON.parse(out.trim().split('\n').at(-1)!) as { sent: number; sessions: number; refused: number };
    expect(report.sent).toBe(ADDRESSES.length * PER_ADDRESS);
    // The flood opened at least as many sessions as the server has slots (2,000), and holds them.
    expect(report.sessions).toBeGreaterThanOrEqual(2000);
    const t0 = Date.now();
    const r = await lab.exec(atk, 'curl', ['-sS', '--max-time', '10', '--interface', '10.9.99.1', '--tftp-blksize', '1468', '-o', join(dir, 'got.bin'), 'tftp://10.9.0.1/loader.bin']);
    const took = Date.now() - t0;
    console.log(`tftp flood: ${report.sent} RRQs sent, ${report.sessions} sessions opened, ${report.refused} refused; fresh client served in ${took} ms`);
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(join(dir, 'got.bin')).equals(payload)).toBe(true);
    expect(took).toBeLessThan(2000);
    expect(proc.exitCode).toBeNull();
    lab.kill(flood);
  }, 120_000);
});
