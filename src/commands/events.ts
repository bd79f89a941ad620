/** rolecast events <host|mac>: one machine's boot timeline, read from the data directory. */
import { loadInventory } from '../inventory/index.js';
import { readTimeline } from '../events/store.js';
import { normaliseMac } from '../boot/facts.js';
import type { Flags } from '../cli.js';
import { findMachine, out, serverConfig, table, UsageError } from './common.js';

export async function cmdEvents(args: string[], flags: Flags): Promise<number> {
  const [key] = args;
  if (!key) throw new UsageError('events needs a host name or MAC');
  const { cfg } = await serverConfig(flags);
  const mac = normaliseMac(key) ?? findMachine(await loadInventory(cfg.profilesDir), key).macs[0]!;
  const events = await readTimeline(cfg.dataDir, mac);
  if (flags.json) out(JSON.stringify(events, null, 2));
  else if (events.length === 0) out(`no boot events for ${key} in ${cfg.dataDir}`);
  else out(table([['AT', 'STAGE', 'ADDRESS', 'DETAIL'], ...events.map((e) => [e.at, e.stage, e.address ?? '-', e.detail ?? ''])]));
  return 0;
}
