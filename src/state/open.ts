/**
 * openState(config): the one way in to the state layer, for `rolecast serve` and every CLI command alike.
 * It honours `state.backend` (the data directory, or the site's PostgreSQL), so `rolecast events`,
 * `power`, `assign`, `boot-once`, `diff` ... read and write what the servers do. A command asks only for
 * the stores it uses (`parts`), so a CLI never opens (and compacts) the lease journal of a running server.
 */
import type { ServerConfig } from '../config.js';
import type { Logger } from '../log.js';
import { silentLogger } from '../log.js';
import { RolecastError } from '../errors.js';
import type { State, StateHealth } from './types.js';

export type StatePart = 'leases' | 'events' | 'served' | 'discovered' | 'power' | 'profiles' | 'boots';
export const ALL_PARTS: readonly StatePart[] = ['leases', 'events', 'served', 'discovered', 'power', 'profiles', 'boots'];

export interface OpenStateOptions<P extends StatePart = StatePart> {
  logger?: Logger;
  /** The stores to open (default: all of them). */
  parts?: readonly P[];
  /** Profile edits on this directory whatever the backend (the CLI's --profiles DIR). */
  profilesDir?: string;
  /** File backend: follow other processes' appends to the event and power logs (default true). */
  follow?: boolean;
  /** Load the event log's kept timelines at open (default true; a command that only appends skips it). */
  loadEvents?: boolean;
  /**
   * The server's own data directory, for what is per server whatever the backend: the boot token
   * records (keyed with <data>/server.key). PostgreSQL without it keeps them in memory.
   */
  dataDir?: string;
}

/** The stores asked for, with health and close. */
export type OpenedState<P extends StatePart = StatePart> = Pick<State, P> & { health(): StateHealth; close(): Promise<void> };

export type StateSource = Pick<ServerConfig, 'dataDir' | 'profilesDir' | 'state'>;

export async function openState<P extends StatePart = StatePart>(cfg: StateSource, opts: OpenStateOptions<P> = {}): Promise<OpenedState<P>> {
  const logger = opts.logger ?? silentLogger();
  const parts: readonly StatePart[] = opts.parts ?? ALL_PARTS;
  if (cfg.state.backend === 'postgres') {
    if (!cfg.state.url) throw new RolecastError('E_USAGE', 'state.backend postgres needs state.url (postgres://user:password@host:port/database)');
    const { openPgState } = await import('./pg/index.js');
    return await openPgState(cfg.state.url, logger, { dataDir: cfg.dataDir, ...opts, parts }) as unknown as OpenedState<P>;
  }
  const { openFileState } = await import('./file/index.js');
  return await openFileState(cfg.dataDir, opts.profilesDir ?? cfg.profilesDir, logger, { ...opts, parts }) as unknown as OpenedState<P>;
}

type Closable = { close(): Promise<void> } | object;

/**
 * Open each store asked for, in order; if one fails, close those already open. `close` of the result
 * closes them in reverse order.
 */
export async function openParts(parts: readonly StatePart[], openers: Record<StatePart, () => Promise<Closable> | Closable>): Promise<{ stores: Partial<Record<StatePart, Closable>>; close(): Promise<void> }> {
  const opened: Array<[StatePart, Closable]> = [];
  const close = async () => {
    for (const [, s] of opened.reverse()) if ('close' in s) await s.close();
  };
  try {
    for (const p of ALL_PARTS) if (parts.includes(p)) opened.push([p, await openers[p]()]);
  } catch (err) {
    await close();
    throw err;
  }
  return { stores: Object.fromEntries(opened), close };
}
