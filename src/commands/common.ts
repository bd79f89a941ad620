/** Shared by the subcommands: where things are, the server config, and the render context. */
import { accessSync, constants, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, isAbsolute, resolve } from 'node:path';
import { baseUrlOf, defaultConfig, type ServerConfig } from '../config.js';
import { loadConfig, type ParsedConfig } from '../configfile.js';
import { loadInventory } from '../inventory/index.js';
import type { OffThreadLoad } from '../inventory/offthread.js';
import { formatIssue, ProfileError, RolecastError } from '../errors.js';
import type { Inventory, Machine } from '../inventory/types.js';
import type { RenderContext } from '../render/types.js';
import { normaliseMac } from '../boot/facts.js';
import { str, UsageError, type Flags } from './spec.js';
import pino from 'pino';
import { createLogger, type Logger } from '../log.js';
import { openState, type OpenedState, type OpenStateOptions, type StatePart } from '../state/open.js';

/** The package root (works from src/commands and dist/commands alike). */
export const PACKAGE_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const BUNDLED_PROFILES = resolve(PACKAGE_ROOT, 'profiles');

/**
 * Where an installed rolecast looks when neither a flag nor the config says: the FHS places the systemd unit
 * gives it (ConfigurationDirectory=rolecast, StateDirectory=rolecast). Never the package's own example, so
 * `assign` cannot edit the bundled profiles by accident and `events` reads the same data wherever it runs.
 */
export const DEFAULT_CONFIG_FILE = '/etc/rolecast/rolecast.yaml';
export const DEFAULT_DIRS = { profilesDir: '/etc/rolecast/profiles', dataDir: '/var/lib/rolecast', imagesDir: '/var/lib/rolecast/images' } as const;

export { UsageError };

export class NotFoundError extends RolecastError {
  constructor(message: string) { super('E_NOT_FOUND', message); }
}

export interface Loaded {
  cfg: ServerConfig;
  /** The config file read, if any. */
  file?: string;
  /** Set when neither the config file nor a flag chose the HTTP port: the site's http_port applies. */
  portFromSite: boolean;
  addressFromSite: boolean;
  /** --profiles was given: that directory, even when the profiles normally come from the database. */
  profilesFlag?: boolean;
}

/** --config, else $ROLECAST_CONFIG, else /etc/rolecast/rolecast.yaml when it exists. */
export function configFileOf(flags: Flags): string | undefined {
  const named = str(flags, 'config') ?? (process.env.ROLECAST_CONFIG || undefined);
  if (named) return resolve(named);
  return existsSync(DEFAULT_CONFIG_FILE) ? DEFAULT_CONFIG_FILE : undefined;
}

async function readConfig(file: string | undefined): Promise<ParsedConfig> {
  if (!file) return { cfg: defaultConfig(), raw: {} };
  try {
    accessSync(file, constants.R_OK);
  } catch (err) {
    const how = process.env.ROLECAST_CONFIG && !file.endsWith(DEFAULT_CONFIG_FILE) ? ' (named by $ROLECAST_CONFIG)' : '';
    if ((err as { code?: string }).code !== 'ENOENT') throw new RolecastError('E_CONFIG_UNREADABLE', `config file ${file}${how} is not readable by uid ${process.getuid?.() ?? '?'}: fix its permissions (and its directory's)`, { cause: err });
    throw new RolecastError('E_CONFIG_MISSING', `config file ${file}${how} does not exist: fix the path, or start from the example: cp ${resolve(PACKAGE_ROOT, 'packaging/rolecast.yaml')} ${file}`);
  }
  try {
    return await loadConfig(file);
  } catch (err) {
    if (!(err instanceof ProfileError)) throw err;
    throw new RolecastError('E_CONFIG', `server config ${file} is invalid (${err.issues.length} error${err.issues.length === 1 ? '' : 's'}):\n${err.issues.map(formatIssue).join('\n')}`, { cause: err });
  }
}

function port(text: string, flag: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n > 65535) throw new UsageError(`--${flag}: "${text}" is not a port number (0-65535)`);
  return n;
}

/**
 * Config file (if any), then flags. Relative paths in the file resolve against the file's directory (so the
 * same file works from any working directory); relative flag values against the working directory.
 */
export async function serverConfig(flags: Flags): Promise<Loaded> {
  const file = configFileOf(flags);
  const parsed = await readConfig(file);
  const { cfg, raw } = parsed;
  const base = file ? dirname(file) : process.cwd();
  for (const key of ['profilesDir', 'dataDir', 'imagesDir'] as const) {
    cfg[key] = raw[key] === undefined ? DEFAULT_DIRS[key] : resolve(base, cfg[key]);
  }
  const portFromSite = !str(flags, 'http-port') && raw.http?.port === undefined;
  const addressFromSite = !str(flags, 'address') && raw.address === undefined;
  const dirFlags = { profiles: 'profilesDir', data: 'dataDir', images: 'imagesDir' } as const;
  for (const [flag, key] of Object.entries(dirFlags)) {
    const v = str(flags, flag);
    if (v) cfg[key] = resolve(v);
  }
  const a = str(flags, 'address');
  if (a) cfg.address = a;
  const p = str(flags, 'http-port');
  if (p) cfg.http.port = port(p, 'http-port');
  const mode = str(flags, 'dhcp-mode');
  if (mode) {
    if (mode !== 'authoritative' && mode !== 'proxy' && mode !== 'off') throw new UsageError(`--dhcp-mode: must be authoritative, proxy or off (got "${mode}")`);
    cfg.dhcp.mode = mode;
  }
  const bu = str(flags, 'base-url');
  if (bu) cfg.baseUrl = bu;
  // Relative TFTP roots (the default images/loaders) are the package's; a config file's are relative to it.
  const rootsBase = raw.tftp && (raw.tftp as Record<string, unknown>).roots !== undefined && file ? dirname(file) : PACKAGE_ROOT;
  cfg.tftp.roots = cfg.tftp.roots.map((r) => (isAbsolute(r) ? r : resolve(rootsBase, r)));
  return { cfg, ...(file ? { file } : {}), portFromSite, addressFromSite, ...(str(flags, 'profiles') ? { profilesFlag: true } : {}) };
}

/** With the postgres state backend (and no --profiles DIR), profiles, edits and served records are the database's. */
export function usesDatabase(l: Loaded): boolean {
  return l.cfg.state.backend === 'postgres' && l.cfg.state.url !== undefined && !l.profilesFlag;
}

/** Store problems a command meets (a write that failed): on stderr, never mixed into its output. */
function cliLogger(): Logger {
  return createLogger('warn', pino.destination({ dest: 2, sync: true }));
}

/**
 * The state a command works on, through the one openState: the config's backend (the data directory,
 * or the site's PostgreSQL), only the stores it names. --profiles DIR keeps profile edits on that
 * directory. Closed after `fn`.
 */
export async function withState<P extends StatePart, T>(l: Loaded, parts: readonly P[], fn: (s: OpenedState<P>) => Promise<T>, opts: Omit<OpenStateOptions<P>, 'parts'> = {}): Promise<T> {
  // A command is short: it need not follow what a running server appends meanwhile (file backend).
  const state = await openState(l.cfg, { logger: cliLogger(), parts, follow: false, ...(l.profilesFlag ? { profilesDir: l.cfg.profilesDir } : {}), ...opts });
  try { return await fn(state); } finally { await state.close(); }
}

/** The database's current profile version as a snapshot (same validation as a directory). */
async function loadFromDatabase(l: Loaded): Promise<Inventory> {
  const { buildInventory } = await import('../inventory/index.js');
  const { pgProfiles } = await import('../state/pg/profiles.js');
  const { version, sources } = await withState(l, ['profiles'], (s) => pgProfiles(s.profiles).current());
  if (version === 0) throw new RolecastError('E_NO_PROFILES', 'the state database holds no profiles yet: rolecast profiles push DIR (or start rolecast serve once with profilesDir set)');
  return buildInventory(sources, `postgres profiles version ${version}`);
}

/** The profiles, with a missing directory named together with the ways to fix it. */
export async function loadProfiles(l: Loaded | ServerConfig): Promise<Inventory> {
  if ('cfg' in l && usesDatabase(l)) return loadFromDatabase(l);
  const cfg = 'cfg' in l ? l.cfg : l;
  const dir = cfg.profilesDir;
  if (!existsSync(dir)) {
    throw new RolecastError('E_NO_PROFILES', `profiles directory ${dir} does not exist: pass --profiles DIR, set profilesDir in ${('file' in l && l.file) || DEFAULT_CONFIG_FILE}, or start from the bundled example: cp -r ${BUNDLED_PROFILES} ${dir}`);
  }
  return loadInventory(dir);
}

/**
 * The profiles for `serve`: like loadProfiles, but a directory is read and validated on a worker thread
 * (the caller imports and opens the rest of the server meanwhile), which stays to hash every machine's
 * files for the API once the caller knows its render context (`load`: hashes() or close()).
 */
export async function loadProfilesForServe(l: Loaded): Promise<{ inv: Inventory; load?: OffThreadLoad }> {
  if (usesDatabase(l) || !existsSync(l.cfg.profilesDir)) return { inv: await loadProfiles(l) };
  const { LOADER_HASHES_MIN, startOffThreadLoad, WorkerUnavailable } = await import('../inventory/offthread.js');
  // Nothing is served yet: the snapshot comes over in one message rather than paced slices.
  const load = startOffThreadLoad(l.cfg.profilesDir, Number.MAX_SAFE_INTEGER);
  try {
    const inv = await load.inventory;
    if (inv.machines.length >= LOADER_HASHES_MIN) return { inv, load };
    load.close();
    return { inv };
  } catch (err) {
    load.close();
    if (err instanceof WorkerUnavailable) return { inv: await loadProfiles(l) };
    throw err;
  }
}

/** Fill what the site profile decides when the config did not: provisioning address and HTTP port. */
export function applySite(l: Loaded, inv: Inventory): ServerConfig {
  if (l.addressFromSite) l.cfg.address = inv.site.server;
  if (l.portFromSite) l.cfg.http.port = inv.site.httpPort;
  return l.cfg;
}

export function renderContext(cfg: ServerConfig): RenderContext {
  return { baseUrl: baseUrlOf(cfg), server: cfg.address };
}

/** A machine by host name or any of its MACs. */
export function findMachine(inv: Inventory, key: string): Machine {
  const mac = normaliseMac(key);
  const m = (mac ? inv.byMac.get(mac) : undefined) ?? inv.byHost.get(key);
  if (!m) throw new NotFoundError(`no machine "${key}" in ${inv.profilesDir} (rolecast machines lists them)`);
  return m;
}

export function out(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}

export function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ')).join('\n');
}
