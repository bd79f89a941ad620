/**
 * PgEventLog's queue while the database is unreachable: bounded (the oldest dropped, in chunks so that
 * an emit does not move the whole queue each time), the newest kept in order, and every event still
 * delivered to local subscribers at once.
 */
import { expect, it } from 'vitest';
import { MAX_QUEUE, PgEventLog } from '../../../src/state/pg/events.js';
import type { PgLink } from '../../../src/state/pg/link.js';
import { silentLogger } from '../../../src/log.js';

const down = { up: false, on: () => undefined, onReconnect: () => undefined, onUp: () => undefined } as unknown as PgLink;

it('keeps at most MAX_QUEUE unwritten events, the newest, and delivers all of them locally', async () => {
  const log = await PgEventLog.open(down, silentLogger());
  let seen = 0;
  log.subscribe(() => { seen++; });
  const n = MAX_QUEUE + 35_123; // past the cap, several chunks dropped
  for (let i = 0; i < n; i++) log.emit({ mac: `52:54:00:00:00:${(i % 200).toString(16).padStart(2, '0')}`, stage: 'dhcp-discover', detail: String(i) });
  expect(seen).toBe(n);
  expect(log.backlog).toBeLessThanOrEqual(MAX_QUEUE);
  expect(log.backlog).toBeGreaterThanOrEqual(MAX_QUEUE * 0.8);
  const queue = (log as unknown as { queue: Array<{ detail: string }> }).queue;
  expect(queue.at(-1)?.detail).toBe(String(n - 1));
  expect(Number(queue[0]!.detail)).toBe(n - queue.length);
});
