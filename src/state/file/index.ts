/** The embedded default state: everything in the data directory, profile edits on the profiles directory. */
import type { Logger } from '../../log.js';
import type { State } from '../types.js';
import { FileLeaseStore } from './leases.js';
import { FileEventLog } from './events.js';
import { FileServedStore } from './served.js';
import { FileDiscoveredStore } from './discovered.js';
import { FilePowerLog } from './power.js';
import { FileProfileEditor } from './profiles.js';

export async function openFileState(dataDir: string, profilesDir: string, logger: Logger): Promise<State> {
  const leases = await FileLeaseStore.open(dataDir, logger.child({ component: 'leases' }));
  const events = await FileEventLog.open(dataDir, logger.child({ component: 'events' }));
  const served = await FileServedStore.open(dataDir);
  const discovered = await FileDiscoveredStore.open(dataDir);
  const power = await FilePowerLog.open(dataDir);
  const profiles = new FileProfileEditor(profilesDir);
  return {
    leases, events, served, discovered, power, profiles,
    async close() {
      await power.close();
      await discovered.close();
      await served.close();
      await events.close();
      await leases.close();
    },
  };
}
