/**
 * rolecast events <host|mac>: one machine's boot timeline from the state (the data directory, or the
 * site's PostgreSQL with state.backend postgres: every server's events).
 */
import { normaliseMac } from '../boot/facts.js';
import { FLAGS, type CommandSpec, type Flags } from './spec.js';
import { findMachine, loadProfiles, out, serverConfig, table, UsageError, withState } from './common.js';

export async function cmdEvents(args: string[], flags: Flags): Promise<number> {
  const [key] = args;
  if (!key) throw new UsageError('events needs a host name or MAC');
  const loaded = await serverConfig(flags);
  const { cfg } = loaded;
  const mac = normaliseMac(key) ?? findMachine(await loadProfiles(loaded), key).macs[0]!;
  // Only this MAC's history is read: no timelines loaded, nothing followed.
  const events = await withState(loaded, ['events'], (s) => s.events.history(mac), { loadEvents: false, follow: false });
  const where = cfg.state.backend === 'postgres' ? 'the state database' : cfg.dataDir;
  if (flags.json) out(JSON.stringify(events, null, 2));
  else if (events.length === 0) out(`no boot events for ${key} in ${where}`);
  else out(table([['AT', 'STAGE', 'ADDRESS', 'DETAIL'], ...events.map((e) => [e.at, e.stage, e.address ?? '-', e.detail ?? ''])]));
  return 0;
}

export const eventsCommand: CommandSpec = {
  name: 'events', summary: 'a machine\'s boot timeline (DHCP, TFTP, HTTP, phone-home)', args: '<host|mac>', minArgs: 1, maxArgs: 1, run: cmdEvents,
  flags: { data: FLAGS.data, profiles: FLAGS.profiles, config: FLAGS.config, json: FLAGS.json },
  description: 'Print the boot events recorded for one machine: in the state directory, or with state.backend postgres in the site\'s database (every server\'s events). A host name is looked up in the profiles; a MAC is used as given (unknown machines have timelines too).',
  examples: ['rolecast events w101', 'rolecast events 52:54:00:00:02:01 --data /var/lib/rolecast --json'],
};
