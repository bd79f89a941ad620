#!/usr/bin/env -S node --import tsx
// A storm's DHCP through the file lease store alone: BENCH_OFFERS_N reserved machines (300) arrive over
// one second, each commits its offer and, 2 ms after the offer is answered, its ACK's bound lease. Every
// fdatasync is made BENCH_OFFERS_SYNC_MS (5) slower, as on a disk shared with other writers. Prints the
// fdatasyncs made and how long the offers waited (p50, p99). An offer of a reserved address does not wait
// for a sync; before that it waited for one (CHANGELOG, fourteenth session).
// Usage: node --import tsx scripts/bench-lease-offers.ts
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { silentLogger } from '../src/log.js';
import { FileLeaseStore } from '../src/state/file/leases.js';

const N = Number(process.env.BENCH_OFFERS_N ?? 300);
const SYNC_MS = Number(process.env.BENCH_OFFERS_SYNC_MS ?? 5);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const dir = mkdtempSync(join(tmpdir(), 'rolecast-offers-'));
try {
  const store = await FileLeaseStore.open(dir, silentLogger());
  // The store's journal handle, its fdatasync counted and slowed (private: this bench looks inside).
  const fh = (store as unknown as { fh: { datasync(): Promise<void> } }).fh;
  const datasync = fh.datasync.bind(fh);
  let syncs = 0;
  fh.datasync = async () => { syncs++; await sleep(SYNC_MS); return datasync(); };
  const expiresAt = new Date(Date.now() + 3_600_000).toISOString();
  const waits: number[] = [];
  await Promise.all(Array.from({ length: N }, async (_, i) => {
    await sleep(Math.random() * 1000);
    const mac = `52:54:02:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
    const ip = `10.2.${i >> 8}.${(i & 255) + 1}`;
    const t = performance.now();
    await store.commit({ mac, ip, state: 'offered', expiresAt }, { reserved: true });
    waits.push(performance.now() - t);
    await sleep(2);
    await store.commit({ mac, ip, state: 'bound', expiresAt, host: `m${i}` }, { reserved: true });
  }));
  await store.close();
  waits.sort((a, b) => a - b);
  const q = (p: number) => waits[Math.min(waits.length - 1, Math.floor(p * waits.length))]!.toFixed(2);
  console.log(`${N} machines, each fdatasync ${SYNC_MS} ms slower: ${syncs} fdatasyncs; the offers waited p50 ${q(0.5)} ms, p99 ${q(0.99)} ms`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
