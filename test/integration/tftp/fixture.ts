import { mkdtempSync, writeFileSync, mkdirSync, rmSync, symlinkSync, truncateSync } from 'node:fs';
import { expect } from 'vitest';
import { tftpGet } from '../../helpers/tftp-client.js';
import { waitFor } from '../../helpers/netns.js';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { startTftpServer, type TftpServer } from '../../../src/tftp/server.js';
import { createResolver } from '../../../src/tftp/resolve.js';
import { loadInventory } from '../../../src/inventory/index.js';
import { defaultConfig, type TftpConfig } from '../../../src/config.js';
import { silentLogger } from '../../../src/log.js';
import type { BootEvent } from '../../../src/events/types.js';

export interface Fixture {
  dir: string;
  root: string;
  files: Record<string, Buffer>;
  server: TftpServer;
  events: Array<Omit<BootEvent, 'at'>>;
  close(): Promise<void>;
}

/** A TFTP root with files of awkward sizes, an outside secret, and a symlink pointing out. */
export async function startFixture(cfg: Partial<TftpConfig> = {}, big = 0): Promise<Fixture> {
  const dir = mkdtempSync(join(tmpdir(), 'rolecast-tftp-'));
  const root = join(dir, 'root');
  mkdirSync(join(root, 'sub'), { recursive: true });
  const files: Record<string, Buffer> = {
    'empty.bin': Buffer.alloc(0), 'one.bin': randomBytes(1), 'exact512.bin': randomBytes(512), 'exact1468.bin': randomBytes(1468 * 3),
    'undionly.kpxe': randomBytes(70_000), 'sub/kernel.img': randomBytes(1_000_003),
  };
  if (big) files['big.bin'] = randomBytes(big);
  for (const [n, b] of Object.entries(files)) writeFileSync(join(root, n), b);
  writeFileSync(join(dir, 'secret.txt'), 'outside the root');
  symlinkSync(join(dir, 'secret.txt'), join(root, 'escape.txt'));
  const events: Fixture['events'] = [];
  const inv = await loadInventory(resolve(import.meta.dirname, '../../fixtures/profiles'));
  const ctx = { baseUrl: 'http://10.0.0.1:8080', server: '10.0.0.1' };
  const resolver = createResolver({ roots: [root], imagesDir: join(dir, 'images'), getInventory: () => inv, ctx });
  const config: TftpConfig = { ...defaultConfig().tftp, port: 0, bind: '127.0.0.1', timeoutMs: 200, ...cfg };
  const server = await startTftpServer({ config, resolver, events: { emit: (e) => events.push(e) }, logger: silentLogger() });
  return { dir, root, files, server, events, close: async () => { await server.close(); rmSync(dir, { recursive: true, force: true }); } };
}

/**
 * A file cut short while it is being sent: the transfer fails, and the client hears so (ERROR 0) at once
 * instead of retrying into its own timeout; it never gets a short block that would end it "complete".
 */
export async function expectReadError(f: Fixture): Promise<void> {
  const data = randomBytes(200_000);
  writeFileSync(join(f.root, 'shrinks.bin'), data);
  await waitFor(() => f.server.stats().active === 0, 5000); // earlier transfers' final ACKs counted
  const before = f.server.stats();
  // 10 ms per ACK: ~10 blocks sent by the time the file is cut, inside the first read-ahead buffer
  // (native: 22 blocks of 1468; JS: 44).
  // The client gives up after 40 silent rounds of 100 ms: an answer within that is the server's ERROR.
  const transfer = tftpGet(f.server.port, 'shrinks.bin', { options: { blksize: '1468' }, ackDelayMs: 10, timeoutMs: 100 });
  await new Promise((r) => setTimeout(r, 100));
  truncateSync(join(f.root, 'shrinks.bin'), 1000);
  const r = await transfer;
  expect(r.error).toEqual({ code: 0, message: 'Read error' });
  expect(r.data.length).toBeLessThan(data.length);
  await waitFor(() => f.server.stats().failed > before.failed, 5000);
  expect(f.server.stats().completed).toBe(before.completed);
}
