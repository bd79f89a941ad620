/**
 * Another process writing to the same state as a running server (as `rolecast power` does), for tests:
 *   node --import tsx test/helpers/state-writer.ts '<{"dataDir","profilesDir","state"} as JSON>' N [PAUSE_MS]
 * Opens the state through openState as the CLI does (events and power only, not following the server), emits N boot events (MACs 52:54:00:77:00:00 +
 * i % 20, host cli-<i % 20>, detail "cli <i>"), one power action per 100 events, pausing PAUSE_MS every 50
 * events so its appends interleave with the server's; closes and prints "done N".
 */
import { openState } from '../../src/state/open.js';
import type { StateSource } from '../../src/state/open.js';

const [cfgJson, nText, pauseText] = process.argv.slice(2);
const cfg = JSON.parse(cfgJson!) as StateSource;
const n = Number(nText ?? 10);
const pause = Number(pauseText ?? 0);
const state = await openState(cfg, { parts: ['events', 'power'], loadEvents: false, follow: false });
const macOf = (i: number) => `52:54:00:77:00:${(i % 20).toString(16).padStart(2, '0')}`;
for (let i = 0; i < n; i++) {
  state.events.emit({ mac: macOf(i), host: `cli-${i % 20}`, stage: 'power-request', detail: `cli ${i}` });
  if (i % 100 === 0) await state.power.record({ host: `cli-${i % 20}`, op: 'status', at: new Date().toISOString(), ok: true, state: 'on', by: `cli ${i}` });
  if (pause && i % 50 === 49) await new Promise((r) => setTimeout(r, pause));
}
await state.close();
process.stdout.write(`done ${n}\n`);
