/** The embedded default state: everything in the data directory, profile edits on the profiles directory. */
import type { Logger } from '../../log.js';
import type { State } from '../types.js';
import { ALL_PARTS, openParts, type OpenStateOptions } from '../open.js';
import { FileLeaseStore } from './leases.js';
import { FileEventLog } from './events.js';
import { FileServedStore } from './served.js';
import { FileDiscoveredStore } from './discovered.js';
import { FilePowerLog } from './power.js';
import { FileProfileEditor } from './profiles.js';
import { FileBootTokens } from './boots.js';

/** All of it (or the `parts` asked for: the other fields are then absent; openState types that). */
export async function openFileState(dataDir: string, profilesDir: string, logger: Logger, opts: OpenStateOptions = {}): Promise<State> {
  const follow = opts.follow ?? true;
  const { stores, close } = await openParts(opts.parts ?? ALL_PARTS, {
    leases: () => FileLeaseStore.open(dataDir, logger.child({ component: 'leases' })),
    events: () => FileEventLog.open(dataDir, logger.child({ component: 'events' }), undefined, undefined, { follow, load: opts.loadEvents ?? true }),
    served: () => FileServedStore.open(dataDir, logger.child({ component: 'served' })),
    discovered: () => FileDiscoveredStore.open(dataDir),
    power: () => FilePowerLog.open(dataDir, logger.child({ component: 'power' }), { follow }),
    profiles: () => new FileProfileEditor(profilesDir),
    boots: () => FileBootTokens.open(dataDir, { logger: logger.child({ component: 'boots' }) }),
  });
  return { ...(stores as unknown as State), health: () => ({ backend: 'file', up: true }), close };
}
