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
import { ALL_PARTS, openParts, type OpenStateOptions } from '../open.js';
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

/** All of it (or the `parts` asked for: the other fields are then absent; openState types that). */
export async function openPgState(url: string, logger: Logger, opts: OpenStateOptions & { startDown?: boolean } = {}): Promise<PgState> {
  const log = logger.child({ component: 'state' });
  const link = await PgLink.open(url, log, { startDown: opts.startDown ?? false });
  try {
    const { stores, close } = await openParts(opts.parts ?? ALL_PARTS, {
      leases: () => PgLeaseStore.open(link, log),
      events: () => PgEventLog.open(link, log, undefined, { load: opts.loadEvents ?? true }),
      served: () => PgServedStore.open(link, log),
      discovered: () => PgDiscoveredStore.open(link, log),
      power: () => PgPowerLog.open(link, log),
      // --profiles DIR on the command line: that directory, even with the database's profiles.
      profiles: () => (opts.profilesDir ? new FileProfileEditor(opts.profilesDir) : new PgProfiles(link)),
      // Boot token records are per server (its own key): in its data directory, as with the file backend.
      boots: () => (opts.dataDir ? FileBootTokens.open(opts.dataDir) : FileBootTokens.memory()),
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
