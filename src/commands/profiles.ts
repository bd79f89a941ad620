/**
 * rolecast profiles push [DIR] | pull DIR | log | rollback VERSION: the profiles kept in PostgreSQL
 * (state backend postgres), versioned. push validates a directory exactly as `validate` does and stores
 * it as a new version; every server running on that database switches to it within seconds.
 */
import { mkdir, readdir, unlink } from 'node:fs/promises';
import { hostname, userInfo } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { writeAtomic } from '../fsutil.js';
import { readSources, ROLES_DIR, versionOf } from '../inventory/load.js';
import { openState } from '../state/open.js';
import type { PgProfiles } from '../state/pg/profiles.js';
import { FLAGS, str, UsageError, type CommandSpec, type Flags } from './spec.js';
import { out, serverConfig, table } from './common.js';

/** Who is pushing, for `profiles log`. */
export function operator(): string {
  let user = 'unknown';
  try { user = userInfo().username; } catch { /* no passwd entry */ }
  return `${process.env.SUDO_USER || user}@${hostname()}`;
}

/** The state URL from --state-url or the config's `state: { backend: postgres, url }`. */
export async function stateUrlOf(flags: Flags): Promise<string> {
  const flag = str(flags, 'state-url');
  if (flag) return flag;
  const { cfg, file } = await serverConfig(flags);
  if (cfg.state.backend === 'postgres' && cfg.state.url) return cfg.state.url;
  throw new UsageError(`profiles are kept in PostgreSQL only: set state: { backend: postgres, url: postgres://... } in ${file ?? 'the config (--config FILE)'} or pass --state-url URL`);
}

async function withProfiles<T>(flags: Flags, fn: (p: PgProfiles) => Promise<T>): Promise<T> {
  const url = await stateUrlOf(flags);
  const state = await openState({ dataDir: '', profilesDir: '', state: { backend: 'postgres', url } }, { parts: ['profiles'] });
  // Imported here: a static import loaded the pg driver into every command, `serve` on files included.
  const { pgProfiles } = await import('../state/pg/profiles.js');
  try { return await fn(pgProfiles(state.profiles)); } finally { await state.close(); }
}

async function cmdPush(args: string[], flags: Flags): Promise<number> {
  const dir = resolve(args[0] ?? (await serverConfig(flags)).cfg.profilesDir);
  const sources = await readSources(dir);
  const what = str(flags, 'message') ?? `push ${dir}`;
  const r = await withProfiles(flags, (p) => p.push(sources, operator(), what));
  out(r.created ? `${dir}: pushed as version ${r.version} (${versionOf(sources).slice(0, 12)})` : `${dir}: unchanged, still version ${r.version}`);
  return 0;
}

async function cmdPull(args: string[], flags: Flags): Promise<number> {
  const dir = resolve(args[0]!);
  const { version, sources } = await withProfiles(flags, (p) => p.current());
  if (version === 0) throw new UsageError('the database holds no profiles yet: rolecast profiles push DIR');
  for (const s of sources) {
    await mkdir(dirname(join(dir, s.name)), { recursive: true });
    await writeAtomic(join(dir, s.name), s.text);
  }
  // The directory becomes exactly that version: role files it no longer has are removed.
  const keep = new Set(sources.map((s) => s.name));
  const roles = await readdir(join(dir, ROLES_DIR)).catch(() => [] as string[]);
  for (const f of roles) if (/\.ya?ml$/.test(f) && !keep.has(join(ROLES_DIR, f))) await unlink(join(dir, ROLES_DIR, f));
  out(`${dir}: version ${version} (${sources.length} files)`);
  return 0;
}

async function cmdLog(_args: string[], flags: Flags): Promise<number> {
  const n = Number(str(flags, 'limit') ?? 50);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`--limit: "${str(flags, 'limit')}" is not a positive number`);
  const versions = await withProfiles(flags, (p) => p.log(n));
  if (flags.json) out(JSON.stringify(versions, null, 2));
  else out(table([['VERSION', 'WHEN', 'WHO', 'WHAT', 'CHANGED'], ...versions.map((v) => [String(v.version), v.at, v.who, v.what, v.changed.join(' ')])]));
  return 0;
}

async function cmdRollback(args: string[], flags: Flags): Promise<number> {
  const v = Number(args[0]);
  if (!Number.isInteger(v) || v < 1) throw new UsageError(`rollback: "${args[0]}" is not a version number (rolecast profiles log lists them)`);
  const r = await withProfiles(flags, (p) => p.rollback(v, operator()));
  out(r.created ? `version ${v} is current again, as version ${r.version}` : `version ${v} is already current (version ${r.version})`);
  return 0;
}

const stateUrl = { value: 'URL', help: 'the state database (default: the config\'s state.url)' };
const common = { config: FLAGS.config, 'state-url': stateUrl };

export const profilesCommand: CommandSpec = {
  name: 'profiles', summary: 'profiles kept in PostgreSQL: push, pull, log, rollback', args: '<push|pull|log|rollback>', flags: {},
  description: 'With the postgres state backend every server reads its profiles from the database. Each push, rollback and edit (assign, the API) makes a new version; every server picks it up within 2 seconds.',
  subcommands: [
    {
      name: 'push', summary: 'validate a profiles directory and store it as the new version', args: '[DIR]', maxArgs: 1,
      flags: { ...common, profiles: FLAGS.profiles, message: { value: 'TEXT', help: 'what this version is, for profiles log', short: 'm' } }, run: cmdPush,
      examples: ['rolecast profiles push /etc/rolecast/profiles -m "web tier on kernel 6.1"'],
    },
    {
      name: 'pull', summary: 'write the current version into a directory', args: '<DIR>', minArgs: 1, maxArgs: 1, flags: common, run: cmdPull,
      examples: ['rolecast profiles pull /tmp/profiles'],
    },
    {
      name: 'log', summary: 'versions: number, when, who, what, files changed', maxArgs: 0,
      flags: { ...common, json: FLAGS.json, limit: { value: 'N', help: 'how many versions (default 50)' } }, run: cmdLog,
      examples: ['rolecast profiles log --limit 10'],
    },
    {
      name: 'rollback', summary: 'make an earlier version current (as a new version)', args: '<VERSION>', minArgs: 1, maxArgs: 1, flags: common, run: cmdRollback,
      examples: ['rolecast profiles rollback 12'],
    },
  ],
};
