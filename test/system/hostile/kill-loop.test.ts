/**
 * Hostile battery, faults: kill -9 of `rolecast serve` in the middle of a DHCP burst, 10 times in a row on
 * the same data directory (4 new clients a round). After every kill the lease journal opens clean, every lease whose ACK reached
 * a client (this round or an earlier one) is there with the address ACKed last, and no address has
 * two holders; the server starts again each time.
 */
import { afterAll, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pino } from 'pino';
import { describeSystem, Lab, waitFor } from '../../helpers/netns.js';
import { FileLeaseStore } from '../../../src/state/file/leases.js';
import type { Logger } from '../../../src/log.js';

const ROOT = resolve(import.meta.dirname, '../../..');
const ROUNDS = 10;

describeSystem('hostile: kill -9 loop', [], () => {
  const lab = new Lab('kloop');
  afterAll(async () => { await lab.cleanup(); });

  it(`${ROUNDS} kill -9 mid-burst: no ACKed lease lost, no double assignment, every restart clean`, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rolecast-kloop-'));
    const srv = lab.ns('s');
    const cli = lab.ns('c');
    lab.veth(srv, 'rs0', cli, 'rc0');
    lab.addr(srv, 'rs0', '10.0.0.1/24');
    lab.addr(cli, 'rc0', '10.0.0.99/24');
    const args = ['--import', 'tsx', join(ROOT, 'src/cli.ts'), 'serve', '--profiles', join(ROOT, 'test/fixtures/profiles'), '--images', join(ROOT, 'images'), '--address', '10.0.0.1', '--data', join(dir, 'data')];
    const acked = new Map<string, string>();
    const t0 = Date.now();
    for (let round = 1; round <= ROUNDS; round++) {
      let log = '';
      const server = lab.spawn(srv, process.execPath, args, { cwd: ROOT });
      server.stdout?.on('data', (d: Buffer) => { log += d.toString(); });
      server.stderr?.on('data', (d: Buffer) => { log += d.toString(); });
      await waitFor(() => log.includes('rolecast serving') || server.exitCode !== null, 30_000);
      expect(log, `round ${round}: start`).toContain('rolecast serving');
      expect(log, `round ${round}: journal`).not.toMatch(/unreadable lines/);
      let roundAcks = 0;
      const probe = lab.spawn(cli, process.execPath, ['--import', 'tsx', join(ROOT, 'test/helpers/dhcp-probe.ts'), 'burst', '4', '10.0.0.255'], { cwd: ROOT, env: { ...process.env, PROBE_MS: '3000', PROBE_MAC_OCTET: (0x80 + round).toString(16) } });
      let buf = '';
      probe.stdout?.on('data', (d: Buffer) => {
        buf += d.toString();
        for (const line of buf.split('\n').slice(0, -1)) {
          const e = JSON.parse(line) as { type: number; mac: string; yiaddr: string };
          if (e.type === 5) { acked.set(e.mac, e.yiaddr); roundAcks++; }
        }
        buf = buf.slice(buf.lastIndexOf('\n') + 1);
      });
      // Each round's 4 clients are new MACs (a client that DISCOVERs again has given its lease up, RFC 2131
      // §4.4), so the 50-address pool holds all 10 rounds.
      await waitFor(() => roundAcks >= 2, 20_000, 5);
      lab.kill(server, 'SIGKILL'); // mid-burst: the other clients are still between OFFER and ACK
      await new Promise((r) => server.once('exit', r));
      await new Promise((r) => probe.once('exit', r));
      const store = await FileLeaseStore.open(join(dir, 'data'), pino({ level: 'silent' }) as unknown as Logger);
      for (const [mac, ip] of acked) expect(store.list().find((l) => l.mac === mac), `round ${round}: lease of ${mac}`).toMatchObject({ ip, state: 'bound' });
      const ips = store.list().filter((l) => l.state === 'bound').map((l) => l.ip);
      expect(new Set(ips).size, `round ${round}: double assignment`).toBe(ips.length);
      await store.close();
    }
    console.log(`kill -9 loop: ${ROUNDS} rounds, ${acked.size} distinct ACKed leases checked after each, ${Date.now() - t0} ms`);
  }, 400_000);
});
