/**
 * The PostgreSQL state backend: one link (pool + LISTEN), the schema migrated at start, and every store
 * of the State bundle over it. Several rolecast servers given the same URL share leases, events, served
 * records, discovered machines, power actions and the profiles.
 */
import type { Logger } from '../../log.js';
import type { State, StateHealth } from '../types.js';
import { PgLink } from './link.js';
import { PgLeaseStore } from './leases.js';
import { PgEventLog } from './events.js';
import { PgDiscoveredStore, PgPowerLog, PgServedStore } from './records.js';
import { PgProfiles } from './profiles.js';
import { FileProfileEditor } from '../file/profiles.js';
import { ALL_PARTS, openParts, type OpenStateOptions, type StatePart } from '../open.js';
import { FileBootTokens } from '../file/boots.js';

export { PgLink, PgLeaseStore, PgEventLog, PgServedStore, PgDiscoveredStore, PgPowerLog, PgProfiles };

export interface PgState extends State {
  leases: PgLeaseStore;
  events: PgEventLog;
  profiles: PgProfiles;
  link: PgLink;
  /** For /healthz and the log: reachable or not, since when, and what waits to be written. */
  health(): StateHealth;
}

/** Each store's notification channel (boot token records are per server: none). */
const CHANNEL: Record<Exclude<StatePart, 'boots'>, string> = {
  leases: 'rolecast_leases', events: 'rolecast_events', served: 'rolecast_served', discovered: 'rolecast_discovered', power: 'rolecast_power', profiles: 'rolecast_profiles',
};

/** All of it (or the `parts` asked for: the other fields are then absent; openState types that). */
export async function openPgState(url: string, logger: Logger, opts: OpenStateOptions & { startDown?: boolean } = {}): Promise<PgState> {
  const log = logger.child({ component: 'state' });
  // LISTEN only on the channels of the stores opened: every notification goes to every listener, and a
  // server whose leases live on its DHCP thread would otherwise read each of its own lease batches twice.
  const parts = opts.parts ?? ALL_PARTS;
  const channels = parts.filter((p) => p !== 'boots').map((p) => CHANNEL[p]);
  const link = await PgLink.open(url, log, { startDown: opts.startDown ?? false, channels });
  try {
    const { stores, close } = await openParts(parts, {
      leases: () => PgLeaseStore.open(link, log),
      events: () => PgEventLog.open(link, log, undefined, { load: opts.loadEvents ?? true }),
      served: () => PgServedStore.open(link, log),
      discovered: () => PgDiscoveredStore.open(link, log),
      power: () => PgPowerLog.open(link, log),
      // --profiles DIR on the command line: that directory, even with the database's profiles.
      profiles: () => (opts.profilesDir ? new FileProfileEditor(opts.profilesDir) : new PgProfiles(link)),
      // Boot token records are per server (its own key): in its data directory, as with the file backend.
      boots: () => (opts.dataDir ? FileBootTokens.open(opts.dataDir, { logger: log.child({ component: 'boots' }) }) : FileBootTokens.memory()),
    });
    const events = stores.events as PgEventLog | undefined;
    return {
      ...(stores as unknown as PgState), link,
      health: () => ({ backend: 'postgres', ...link.health(), queuedEvents: events?.backlog ?? 0 }),
      close: async () => {
        await close();
        await link.close();
      },
    };
  } catch (err) {
    await link.close();
    throw err;
  }
}
