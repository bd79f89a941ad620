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

export { PgLink, PgLeaseStore, PgEventLog, PgServedStore, PgDiscoveredStore, PgPowerLog, PgProfiles };

export interface PgState extends State {
  leases: PgLeaseStore;
  events: PgEventLog;
  profiles: PgProfiles;
  link: PgLink;
  /** For /healthz and the log: reachable or not, since when, and what waits to be written. */
  health(): StateHealth;
}

export async function openPgState(url: string, logger: Logger): Promise<PgState> {
  const log = logger.child({ component: 'state' });
  const link = await PgLink.open(url, log);
  try {
    const leases = await PgLeaseStore.open(link, log);
    const events = await PgEventLog.open(link, log);
    const served = await PgServedStore.open(link, log);
    const discovered = await PgDiscoveredStore.open(link, log);
    const power = await PgPowerLog.open(link, log);
    const profiles = new PgProfiles(link);
    return {
      leases, events, served, discovered, power, profiles, link,
      health: () => ({ backend: 'postgres', ...link.health(), queuedEvents: events.backlog }),
      close: async () => {
        await leases.close();
        await events.close();
        await served.close();
        await discovered.close();
        await power.close();
        await link.close();
      },
    };
  } catch (err) {
    await link.close();
    throw err;
  }
}
