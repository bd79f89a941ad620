/**
 * A server on the postgres backend: the State bundle from the database, and an inventory snapshot built
 * from the database's current profile version (the same parse and validation as a directory), rebuilt
 * whenever any server or `rolecast profiles` makes a new version (NOTIFY). The first server to start on
 * an empty database loads its profiles directory as version 1, so a site starts with one command.
 */
import type { ServerConfig } from '../../config.js';
import { RolecastError } from '../../errors.js';
import { buildInventory } from '../../inventory/index.js';
import { readSources } from '../../inventory/load.js';
import { InventoryStore } from '../../inventory/watch.js';
import type { Logger } from '../../log.js';
import { openPgState, type PgState } from './index.js';
import { redact } from './link.js';

export async function openPgSite(cfg: ServerConfig, logger: Logger): Promise<{ state: PgState; store: InventoryStore }> {
  const url = cfg.state.url;
  if (!url) throw new RolecastError('E_USAGE', 'state.backend postgres needs state.url (postgres://user:password@host:port/database)');
  const state = await openPgState(url, logger);
  try {
    const first = await state.profiles.current();
    if (first.version === 0) {
      const r = await state.profiles.push(await readSources(cfg.profilesDir), 'rolecast serve', `first start: ${cfg.profilesDir}`);
      logger.info({ version: r.version, from: cfg.profilesDir }, 'state database had no profiles: loaded the profiles directory as the first version');
    } else {
      logger.info({ version: first.version }, `profiles come from the state database (${redact(url)}), not ${cfg.profilesDir}: rolecast profiles push to change them`);
    }
    const load = async () => {
      const { version, sources } = await state.profiles.current();
      return buildInventory(sources, `postgres profiles version ${version}`);
    };
    // A pushed version is the operator's confirmation, and every server must switch alike: no settle
    // delay and no drop guard (a version is validated as a whole before it is stored).
    const store = await InventoryStore.open(cfg.profilesDir, logger, { settleMs: 0, maxDropShare: 1 }, load);
    state.profiles.onChange(() => { void store.reload(); });
    return { state, store };
  } catch (err) {
    await state.close();
    throw err;
  }
}
