/**
 * A retransmission answered from the repeat cache while its answer waits to leave (dhcp.replyDelayMs, and
 * node:dgram with dhcp.batchIo: off, which queues the buffer it is given): the cache's bytes are a view of
 * its arena, which the next 1,024 fresh answers overwrite. The probe (test/helpers/dhcp-probe.ts overrun)
 * sends one reserved machine's DISCOVER, the same DISCOVER again 300 ms later, and at once one DISCOVER from
 * each of 1,199 other reserved machines: far more fresh answers than the cache keeps, all made before the
 * delayed retransmission leaves. Every OFFER must carry its own machine's address, and the first machine
 * must get the same OFFER twice — with the arena's bytes sent late it would get a stranger's OFFER instead.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { describeSystem, Lab, waitFor } from '../../helpers/netns.js';
import { fixtureMac, writeFixtureProfiles } from '../../helpers/profiles.js';

const ROOT = resolve(import.meta.dirname, '../../..');
const N = 1200;

/** The address writeFixtureProfiles reserves for machine i. */
const fixtureIp = (i: number) => `10.0.${Math.floor((i + 10) / 250)}.${((i + 10) % 250) + 1}`;

for (const batchIo of ['auto', 'off'] as const) {
  describeSystem(`a delayed retransmission after the repeat cache turned over (dhcp.batchIo: ${batchIo})`, [], () => {
    const lab = new Lab(`rd${batchIo.slice(0, 2)}`);
    const dir = mkdtempSync(join(tmpdir(), `rolecast-repeat-delayed-${batchIo}-`));
    let srv: string;
    let cli: string;
    let proc: ChildProcess;
    let log = '';

    beforeAll(async () => {
      writeFixtureProfiles(join(dir, 'profiles'), { machines: N });
      mkdirSync(join(dir, 'images/build/rootfs'), { recursive: true });
      const cfg = join(dir, 'rolecast.yaml');
      // The delay outlasts the burst: every fresh answer is made (and kept) before the retransmission leaves.
      writeFileSync(cfg, `dhcp:\n  batchIo: ${batchIo}\n  replyDelayMs: 2500\n`);
      srv = lab.ns('s');
      cli = lab.ns('c');
      lab.veth(srv, 'rs0', cli, 'rc0');
      lab.addr(srv, 'rs0', '10.0.0.1/16');
      lab.addr(cli, 'rc0', '10.0.255.1/16');
      proc = lab.spawn(srv, process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli.ts'), 'serve', '--config', cfg, '--profiles', join(dir, 'profiles'),
        '--images', join(dir, 'images'), '--address', '10.0.0.1', '--data', join(dir, 'data'), '--http-port', '8080'], { cwd: ROOT });
      proc.stdout?.on('data', (d: Buffer) => { log += d.toString(); });
      proc.stderr?.on('data', (d: Buffer) => { log += d.toString(); });
      await waitFor(() => log.includes('rolecast serving'), 30_000);
    }, 60_000);

    afterAll(async () => { await lab.cleanup(); });

    it('every OFFER carries its own machine\'s address; the repeated one is the first one again', async () => {
      const child = lab.spawn(cli, process.execPath, ['--import', 'tsx', join(ROOT, 'test/helpers/dhcp-probe.ts'), 'overrun', String(N), '10.0.255.255'],
        { cwd: ROOT, env: { ...process.env, PROBE_MAC_OCTET: '10', PROBE_MS: '8000', PROBE_SNMP: '1' } });
      const probe = { stdout: '', stderr: '' };
      child.stdout?.on('data', (d: Buffer) => { probe.stdout += d.toString(); });
      child.stderr?.on('data', (d: Buffer) => { probe.stderr += d.toString(); });
      await new Promise((r) => child.once('exit', r));
      const offers = probe.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { type: number; mac: string; yiaddr: string });
      const index = new Map(Array.from({ length: N }, (_, i) => [fixtureMac(i), i]));
      for (const o of offers) {
        expect(o.type, JSON.stringify(o)).toBe(2);
        expect(o.yiaddr, `${o.mac}: ${probe.stderr}`).toBe(fixtureIp(index.get(o.mac)!));
      }
      const first = offers.filter((o) => o.mac === fixtureMac(0));
      expect(first, probe.stderr + log.slice(-2000)).toHaveLength(2);
      // Enough fresh answers were made while the retransmission waited to turn the cache's ring over.
      const fresh = new Set(offers.filter((o) => o.mac !== fixtureMac(0)).map((o) => o.mac));
      expect(fresh.size, probe.stderr).toBeGreaterThan(1024);
      // No machine got more OFFERs than it asked for (a stranger's bytes sent again would add one).
      const counts = new Map<string, number>();
      for (const o of offers) counts.set(o.mac, (counts.get(o.mac) ?? 0) + 1);
      expect([...counts].filter(([mac, c]) => mac !== fixtureMac(0) && c > 1)).toEqual([]);
    }, 60_000);
  });
}
