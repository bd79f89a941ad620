/**
 * http.rtoMaxMs on real connections: every accepted HTTP socket gets its retransmission backoff capped
 * (TCP_RTO_MAX_MS, read back from the kernel with getsockopt), at the default 2000 ms or the configured
 * value; 120000 (the kernel's own cap) leaves sockets as the kernel makes them. Needs Linux 6.15+ and the
 * native addon: elsewhere the test says so and skips.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../../src/http/app.js';
import { openFileState } from '../../../src/state/file/index.js';
import type { State } from '../../../src/state/types.js';
import { InventoryStore } from '../../../src/inventory/watch.js';
import { defaultConfig } from '../../../src/config.js';
import { silentLogger } from '../../../src/log.js';
import { capRetransmitTimeout, retransmitTimeoutCap } from '../../../src/native/sendfile.js';
import { writeFixtureProfiles } from '../../helpers/profiles.js';

const dir = mkdtempSync(join(tmpdir(), 'rolecast-rto-'));
const opened: Array<{ app: FastifyInstance; state: State; inv: InventoryStore }> = [];
afterAll(async () => {
  for (const o of opened) { await o.app.close(); await o.state.close(); o.inv.close(); }
  rmSync(dir, { recursive: true, force: true });
});

/** Can this kernel and build cap a socket's RTO at all? (a plain loopback pair, set and read back) */
async function supported(): Promise<boolean> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  const accepted = new Promise<Socket>((r) => srv.once('connection', r));
  const c = connect(port, '127.0.0.1');
  const s = await accepted;
  const ok = capRetransmitTimeout(s, 3000) === 0 && retransmitTimeoutCap(s) === 3000;
  c.destroy(); s.destroy(); srv.close();
  return ok;
}
const can = await supported();
if (!can) console.warn('SKIP http.rtoMaxMs: the kernel (TCP_RTO_MAX_MS needs Linux 6.15+) or the native addon cannot cap a socket\'s RTO here');

/** The server's side of one connection made to the app listening with this http.rtoMaxMs. */
async function serverSocket(rtoMaxMs: number | undefined, name: string): Promise<Socket> {
  const base = join(dir, name);
  writeFixtureProfiles(join(base, 'profiles'));
  const cfg = { ...defaultConfig(), profilesDir: join(base, 'profiles'), dataDir: join(base, 'data'), imagesDir: join(base, 'images'), address: '127.0.0.1' };
  if (rtoMaxMs !== undefined) cfg.http = { ...cfg.http, rtoMaxMs };
  const inv = await InventoryStore.open(cfg.profilesDir, silentLogger());
  const state = await openFileState(cfg.dataDir, cfg.profilesDir, silentLogger());
  const app = await buildApp({ getInventory: () => inv.current(), config: cfg, logger: silentLogger(), state });
  opened.push({ app, state, inv });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const port = (app.server.address() as { port: number }).port;
  const accepted = new Promise<Socket>((r) => app.server.once('connection', r));
  const res = await fetch(`http://127.0.0.1:${port}/healthz`);
  expect(res.status).toBe(200);
  await res.arrayBuffer();
  return accepted;
}

describe.skipIf(!can)('http.rtoMaxMs', () => {
  it('caps every HTTP connection at 2000 ms by default', async () => {
    expect(retransmitTimeoutCap(await serverSocket(undefined, 'default'))).toBe(2000);
  });

  it('at the configured value', async () => {
    expect(retransmitTimeoutCap(await serverSocket(7000, 'seven'))).toBe(7000);
  });

  it('120000 leaves the kernel\'s own cap', async () => {
    expect(retransmitTimeoutCap(await serverSocket(120_000, 'kernel'))).toBe(120_000);
  });
});
