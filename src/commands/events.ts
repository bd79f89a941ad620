/** rolecast events <host|mac>: one machine's boot timeline, read from the data directory. */
import { readTimeline } from '../state/file/events.js';
import { normaliseMac } from '../boot/facts.js';
import { FLAGS, type CommandSpec, type Flags } from './spec.js';
import { findMachine, loadProfiles, out, serverConfig, table, UsageError } from './common.js';

export async function cmdEvents(args: string[], flags: Flags): Promise<number> {
  const [key] = args;
  if (!key) throw new UsageError('events needs a host name or MAC');
  const loaded = await serverConfig(flags);
  const { cfg } = loaded;
  const mac = normaliseMac(key) ?? findMachine(await loadProfiles(loaded), key).macs[0]!;
  const events = await readTimeline(cfg.dataDir, mac);
  if (flags.json) out(JSON.stringify(events, null, 2));
  else if (events.length === 0) out(`no boot events for ${key} in ${cfg.dataDir}`);
  else out(table([['AT', 'STAGE', 'ADDRESS', 'DETAIL'], ...events.map((e) => [e.at, e.stage, e.address ?? '-', e.detail ?? ''])]));
  return 0;
}

export const eventsCommand: CommandSpec = {
  name: 'events', summary: 'a machine\'s boot timeline (DHCP, TFTP, HTTP, phone-home)', args: '<host|mac>', minArgs: 1, maxArgs: 1, run: cmdEvents,
  flags: { data: FLAGS.data, profiles: FLAGS.profiles, config: FLAGS.config, json: FLAGS.json },
  description: 'Print the boot events recorded for one machine in the state directory. A host name is looked up in the profiles; a MAC is used as given (unknown machines have timelines too).',
  examples: ['rolecast events w101', 'rolecast events 52:54:00:00:02:01 --data /var/lib/rolecast --json'],
};
