/**
 * kill -9 of the server in the middle of a burst of leases: after a restart, every lease whose ACK
 * reached a client is still on disk (leases are fdatasync'd before the ACK is sent). Through both ways
 * DHCP moves datagrams: batched (recvmmsg/sendmmsg: the replies of a turn leave together, after their
 * commits) and node:dgram (dhcp.batchIo: off); and on DHCP's own thread, which holds the lease journal
 * (dhcp.thread: auto), as well as on the main thread (off).
 */
import { afterAll, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pino } from 'pino';
import { describeSystem, Lab, waitFor } from '../../helpers/netns.js';
import { FileLeaseStore as LeaseStore } from '../../../src/state/file/leases.js';
import type { Logger } from '../../../src/log.js';

const ROOT = resolve(import.meta.dirname, '../../..');

describeSystem('DHCP leases survive kill -9', [], () => {
  const lab = new Lab('kill');
  afterAll(async () => { await lab.cleanup(); });

  it.each([
    ['auto', 'auto', /"thread":"dhcp","mode"[^\n]*"io":"batched/],
    ['off', 'auto', /"thread":"dhcp","mode"[^\n]*"io":"node:dgram/],
    ['auto', 'off', /"component":"dhcp","mode"[^\n]*"io":"batched/],
  ] as const)('every ACKed lease is still there after kill -9 and restart (batchIo %s, thread %s)', async (batchIo, thread, io) => {
    const dir = mkdtempSync(join(tmpdir(), 'rolecast-kill-'));
    const srv = lab.ns(`s${batchIo}${thread}`);
    const cli = lab.ns(`c${batchIo}${thread}`);
    lab.veth(srv, 'rs0', cli, 'rc0');
    lab.addr(srv, 'rs0', '10.0.0.1/24');
    lab.addr(cli, 'rc0', '10.0.0.99/24');
    const cfg = join(dir, 'rolecast.yaml');
    writeFileSync(cfg, `dhcp:\n  batchIo: '${batchIo}'\n  thread: '${thread}'\n`);
    const args = ['--import', 'tsx', join(ROOT, 'src/cli.ts'), 'serve', '--config', cfg, '--profiles', join(ROOT, 'test/fixtures/profiles'), '--images', join(ROOT, 'images'), '--address', '10.0.0.1', '--data', join(dir, 'data')];
    let log = '';
    const server = lab.spawn(srv, process.execPath, args, { cwd: ROOT });
    server.stdout?.on('data', (d: Buffer) => { log += d.toString(); });
    await waitFor(() => log.includes('rolecast serving'), 30_000);
    expect(log).toMatch(io); // the path under test is the one in use (a missing addon would silently test the other)

    const acked = new Map<string, string>();
    const probe = lab.spawn(cli, process.execPath, ['--import', 'tsx', join(ROOT, 'test/helpers/dhcp-probe.ts'), 'burst', '45', '10.0.0.255'], { cwd: ROOT, env: { ...process.env, PROBE_MS: '8000' } });
    let buf = '';
    probe.stdout?.on('data', (d: Buffer) => {
      buf += d.toString();
      for (const line of buf.split('\n').slice(0, -1)) {
        const e = JSON.parse(line) as { type: number; mac: string; yiaddr: string };
        if (e.type === 5) acked.set(e.mac, e.yiaddr);
      }
      buf = buf.slice(buf.lastIndexOf('\n') + 1);
    });
    // Kill in the middle of the burst.
    await waitFor(() => acked.size >= 10, 20_000, 5);
    lab.kill(server, 'SIGKILL');
    await new Promise((r) => server.once('exit', r));
    await new Promise((r) => probe.once('exit', r));
    expect(acked.size).toBeGreaterThanOrEqual(10);

    const store = await LeaseStore.open(join(dir, 'data'), pino({ level: 'silent' }) as unknown as Logger);
    for (const [mac, ip] of acked) {
      const rec = store.list().find((l) => l.mac === mac);
      expect(rec, `lease of ${mac}`).toMatchObject({ ip, state: 'bound' });
    }
    // No address went to two MACs.
    const ips = store.list().filter((l) => l.state === 'bound').map((l) => l.ip);
    expect(new Set(ips).size).toBe(ips.length);
    await store.close();

    let log2 = '';
    const again = lab.spawn(srv, process.execPath, args, { cwd: ROOT });
    again.stdout?.on('data', (d: Buffer) => { log2 += d.toString(); });
    await waitFor(() => log2.includes('rolecast serving'), 30_000);
    expect(log2).not.toMatch(/unreadable lines/);
  }, 90_000);
});
