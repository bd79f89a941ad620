/** Shared by the subcommands: where things are, the server config, and the render context. */
import { fileURLToPath } from 'node:url';
import { dirname, isAbsolute, resolve } from 'node:path';
import { baseUrlOf, defaultConfig, type ServerConfig } from '../config.js';
import { loadConfig } from '../configfile.js';
import { RolecastError } from '../errors.js';
import type { Inventory, Machine } from '../inventory/types.js';
import type { RenderContext } from '../render/types.js';
import { normaliseMac } from '../boot/facts.js';
import type { Flags } from '../cli.js';

/** The package root (works from src/commands and dist/commands alike). */
export const PACKAGE_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const BUNDLED_PROFILES = resolve(PACKAGE_ROOT, 'profiles');

export class UsageError extends RolecastError {
  constructor(message: string) { super('E_USAGE', message); }
}

export class NotFoundError extends RolecastError {
  constructor(message: string) { super('E_NOT_FOUND', message); }
}

function str(flags: Flags, name: string): string | undefined {
  const v = flags[name];
  return typeof v === 'string' ? v : undefined;
}

export interface Loaded {
  cfg: ServerConfig;
  /** Set when neither the config file nor a flag chose the HTTP port: the site's http_port applies. */
  portFromSite: boolean;
  addressFromSite: boolean;
}

/** Config file (if any), then flags. Relative paths resolve against the working directory. */
export async function serverConfig(flags: Flags): Promise<Loaded> {
  const file = str(flags, 'config');
  const parsed = file ? await loadConfig(file) : { cfg: defaultConfig(), raw: {} as Record<string, undefined> };
  const { cfg } = parsed;
  const portFromSite = !str(flags, 'http-port') && (parsed.raw.http as Record<string, unknown> | undefined)?.port === undefined;
  const addressFromSite = !str(flags, 'address') && parsed.raw.address === undefined;
  if (!file) cfg.profilesDir = BUNDLED_PROFILES;
  const p = str(flags, 'profiles');
  if (p) cfg.profilesDir = p;
  const d = str(flags, 'data');
  if (d) cfg.dataDir = d;
  const a = str(flags, 'address');
  if (a) cfg.address = a;
  const port = str(flags, 'http-port');
  if (port) {
    const n = Number(port);
    if (!Number.isInteger(n) || n < 0 || n > 65535) throw new UsageError(`--http-port: "${port}" is not a port number`);
    cfg.http.port = n;
  }
  const mode = str(flags, 'dhcp-mode');
  if (mode) {
    if (mode !== 'authoritative' && mode !== 'proxy' && mode !== 'off') throw new UsageError(`--dhcp-mode: must be authoritative, proxy or off (got "${mode}")`);
    cfg.dhcp.mode = mode;
  }
  const bu = str(flags, 'base-url');
  if (bu) cfg.baseUrl = bu;
  cfg.profilesDir = resolve(cfg.profilesDir);
  cfg.dataDir = resolve(cfg.dataDir);
  cfg.imagesDir = resolve(file ? cfg.imagesDir : resolve(PACKAGE_ROOT, 'images'));
  // Relative TFTP roots are relative to the config file, or to the package for the bundled setup.
  const base = file ? dirname(resolve(file)) : PACKAGE_ROOT;
  cfg.tftp.roots = cfg.tftp.roots.map((r) => (isAbsolute(r) ? r : resolve(base, r)));
  return { cfg, portFromSite, addressFromSite };
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
  const m = mac ? inv.byMac.get(mac) : inv.byHost.get(key);
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
