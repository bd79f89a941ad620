/**
 * A server on the postgres backend: the State bundle from the database, and an inventory snapshot built
 * from the database's current profile version (the same parse and validation as a directory), rebuilt
 * whenever any server or `rolecast profiles` makes a new version (NOTIFY). The first server to start on
 * an empty database loads its profiles directory as version 1, so a site starts with one command.
 *
 * Every version it loads is also kept in the data directory (<data>/profiles.cache.json, mode 0600: it
 * holds secrets.yaml). With the database unreachable at start, the server starts from that copy,
 * degraded — reserved machines boot, pool allocations are refused, /healthz and the log say so — and
 * switches to the database's version by itself once it connects.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ServerConfig } from '../../config.js';
import { RolecastError } from '../../errors.js';
import { writeAtomic } from '../../fsutil.js';
import { buildInventoryAnywhere, type HashRequest } from '../../inventory/offthread.js';
import { readSources, type SourceFile } from '../../inventory/load.js';
import { InventoryStore } from '../../inventory/watch.js';
import type { Logger } from '../../log.js';
import { openPgState, type PgState } from './index.js';
import { redact } from './link.js';
import { ALL_PARTS } from '../open.js';

interface Cached { version: number; at: string; sources: SourceFile[] }

export function profileCachePath(dataDir: string): string {
  return join(dataDir, 'profiles.cache.json');
}

async function readCache(dataDir: string): Promise<Cached | undefined> {
  try {
    const c = JSON.parse(await readFile(profileCachePath(dataDir), 'utf8')) as Cached;
    return Number.isInteger(c.version) && Array.isArray(c.sources) ? c : undefined;
  } catch {
    return undefined; // none yet, or unreadable: the database is the source
  }
}

/**
 * `leases: false`: without the lease store (the DHCP thread opens it, src/dhcp/thread.ts). `hashing`:
 * every version loaded gets its machines' hashes for the API from the loader thread (a thousand
 * machines' files rendered on the main thread took it 30-85 ms in slices, while DHCP answered there).
 */
export async function openPgSite(cfg: ServerConfig, logger: Logger, opts: { leases?: boolean; hashing?: Omit<HashRequest, 'wanted'> } = {}): Promise<{ state: PgState; store: InventoryStore }> {
  const url = cfg.state.url;
  if (!url) throw new RolecastError('E_USAGE', 'state.backend postgres needs state.url (postgres://user:password@host:port/database)');
  const parts = opts.leases === false ? { parts: ALL_PARTS.filter((p) => p !== 'leases') } : {};
  const state = await openPgState(url, logger, { startDown: true, dataDir: cfg.dataDir, ...parts });
  try {
    let cached = await readCache(cfg.dataDir);
    if (state.link.up) await firstVersion(cfg, state, logger);
    else if (!cached) {
      throw new RolecastError('E_STATE_UNAVAILABLE', `cannot reach the state database (${redact(url)}) and ${profileCachePath(cfg.dataDir)} holds no copy of its profiles (a server keeps one once it has started with the database up): start the database, or use state.backend file`);
    } else logger.warn({ version: cached.version, since: cached.at, cache: profileCachePath(cfg.dataDir) }, `state database unreachable: serving profiles version ${cached.version} from the data directory's copy (degraded: pool allocations refused) until it is back`);
    // The same version from the copy or the database is the same snapshot (and the same label).
    const serving: { store?: InventoryStore } = {};
    // A version already serving (a notification of nothing new) is not hashed again.
    const hashing: HashRequest | undefined = opts.hashing && { ...opts.hashing, wanted: (inv) => inv.version !== serving.store?.current().version };
    const load = async () => {
      // Parsed and validated on a worker thread (src/inventory/offthread.ts): a pushed version does not stall
      // serving; its machines' hashes (the API's) are worked out there too, not on this thread.
      if (!state.link.up && cached) return buildInventoryAnywhere(cached.sources, `postgres profiles version ${cached.version}`, hashing);
      const { version, sources } = await state.profiles.current();
      if (version === 0 && cached) return buildInventoryAnywhere(cached.sources, `postgres profiles version ${cached.version}`, hashing);
      const inv = await buildInventoryAnywhere(sources, `postgres profiles version ${version}`, hashing);
      if (version !== cached?.version) {
        cached = { version, at: new Date().toISOString(), sources };
        await mkdir(cfg.dataDir, { recursive: true });
        await writeAtomic(profileCachePath(cfg.dataDir), JSON.stringify(cached), 0o600)
          .catch((err: unknown) => logger.warn({ err }, 'cannot keep a copy of the profiles in the data directory'));
      }
      return inv;
    };
    // A pushed version is the operator's confirmation, and every server must switch alike: no settle
    // delay and no drop guard (a version is validated as a whole before it is stored).
    const store = await InventoryStore.open(cfg.profilesDir, logger, { settleMs: 0, maxDropShare: 1 }, load);
    serving.store = store;
    state.profiles.onChange(() => { void store.reload(); });
    return { state, store };
  } catch (err) {
    await state.close();
    throw err;
  }
}

/** An empty database gets the profiles directory as version 1. */
async function firstVersion(cfg: ServerConfig, state: PgState, logger: Logger): Promise<void> {
  const first = await state.profiles.current();
  if (first.version === 0) {
    const r = await state.profiles.push(await readSources(cfg.profilesDir), 'rolecast serve', `first start: ${cfg.profilesDir}`);
    logger.info({ version: r.version, from: cfg.profilesDir }, 'state database had no profiles: loaded the profiles directory as the first version');
  } else {
    logger.info({ version: first.version }, `profiles come from the state database (${redact(cfg.state.url!)}), not ${cfg.profilesDir}: rolecast profiles push to change them`);
  }
}
