/**
 * The DHCP thread starts listening only once it holds the whole snapshot: above the thread's slice size
 * (1,000 machines) `listen` used to reach it before the last slice and the start failed with "dhcp thread:
 * no inventory yet" (every `serve` of a large inventory with dhcp.thread: auto).
 */
import { afterAll, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { DhcpThread } from '../../../src/dhcp/thread.js';
import { buildInventory } from '../../../src/inventory/index.js';
import { readSources } from '../../../src/inventory/load.js';
import { defaultConfig } from '../../../src/config.js';
import { silentLogger } from '../../../src/log.js';

const ROOT = resolve(import.meta.dirname, '../../..');
const dir = mkdtempSync(join(tmpdir(), 'rolecast-dhcp-thread-inv-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const hex = (x: number) => x.toString(16).padStart(2, '0');

it('listens with 2,500 machines (three slices) and answers from the full snapshot', async () => {
  const sources = await readSources(join(ROOT, 'test/fixtures/profiles'));
  const n = 2500;
  const extra = Array.from({ length: n }, (_, i) => `  - { host: t${i}, mac: [52:54:01:00:${hex(i >> 8)}:${hex(i & 255)}, 52:54:02:00:${hex(i >> 8)}:${hex(i & 255)}], role: web, ip: 10.0.${20 + (i >> 8)}.${i & 255}, sites: [SiteA] }`).join('\n');
  const patched = sources.map((s) => s.name.endsWith('machines.yaml') ? { ...s, text: `${s.text.trimEnd()}\n${extra}\n` }
    : s.name.endsWith('rolecast.yaml') ? { ...s, text: s.text.replace('cidr: 10.0.0.0/24', 'cidr: 10.0.0.0/16') } : s);
  const inv = buildInventory(patched, join(ROOT, 'test/fixtures/profiles'));
  expect(inv.machines.length).toBeGreaterThan(n);
  const thread = await DhcpThread.open({ dataDir: dir, log: { level: 'silent', pretty: false } }, silentLogger());
  try {
    const server = await thread.listen({
      config: { ...defaultConfig().dhcp, mode: 'authoritative', bind: '127.0.0.1', port: 0 }, address: '127.0.0.1', baseUrl: 'http://127.0.0.1:8080',
      inventory: inv, sinks: { events: { emit: () => undefined }, metrics: { add: () => undefined } },
    });
    expect(server.port).toBeGreaterThan(0);
  } finally {
    await thread.close();
  }
}, 60_000);
