/**
 * rolecast reload [--force]: ask the running server to reload its profiles now, over its API (POST
 * /api/reload with an admin token). `--force` confirms a reload the drop guard held back because it
 * would remove more than reload.maxDropShare of the machines. SIGHUP to the server does the same as --force.
 */
import { FLAGS, UsageError, type CommandSpec, type Flags } from './spec.js';
import { applySite, loadProfiles, out, serverConfig } from './common.js';
import { RolecastError } from '../errors.js';

interface Answer { ok?: boolean; changed?: boolean; issues?: string[]; held?: { dropped: string[]; machines: number }; version?: string; machines?: number; message?: string }

export async function cmdReload(_args: string[], flags: Flags): Promise<number> {
  const loaded = await serverConfig(flags);
  const cfg = applySite(loaded, await loadProfiles(loaded));
  const host = cfg.http.host === '0.0.0.0' || cfg.http.host === '::' ? '127.0.0.1' : cfg.http.host;
  const url = typeof flags.url === 'string' ? flags.url : `http://${host}:${cfg.http.port}`;
  const token = process.env.ROLECAST_TOKEN ?? cfg.http.tokens?.admin?.[0] ?? cfg.http.token;
  if (!token) throw new UsageError('reload needs an admin token: set ROLECAST_TOKEN, or http.tokens.admin in the server config');
  let res: Response;
  try {
    res = await fetch(`${url}/api/reload`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ force: flags.force === true }) });
  } catch (err) {
    throw new RolecastError('E_UNREACHABLE', `cannot reach rolecast at ${url}: ${(err as Error).message} (is it running? --url)`, { cause: err });
  }
  const a = await res.json().catch(() => ({})) as Answer;
  if (a.held) {
    out(`held back: the new profiles would drop ${a.held.dropped.length} of ${a.held.machines} machines (${a.held.dropped.join(', ')}); run rolecast reload --force to apply them`);
    return 1;
  }
  if (a.issues?.length) { out(`profiles invalid; the server keeps the last good snapshot:\n${a.issues.join('\n')}`); return 1; }
  if (!res.ok) { out(`rolecast answered ${res.status}: ${a.message ?? 'no reason given'}`); return 1; }
  out(`${a.changed ? 'reloaded' : 'unchanged'}: version ${a.version}, ${a.machines} machines`);
  return 0;
}

export const reloadCommand: CommandSpec = {
  name: 'reload', summary: 'make the running server reload its profiles now', maxArgs: 0, run: cmdReload,
  flags: {
    config: FLAGS.config, profiles: FLAGS.profiles,
    force: { help: 'apply even a reload that would drop more than reload.maxDropShare of the machines' },
    url: { value: 'URL', help: 'the server\'s API (default http://127.0.0.1:<http.port>)' },
  },
  description: 'Ask the running rolecast to reload its profiles now, through its API with an admin token ($ROLECAST_TOKEN, else the first of http.tokens.admin in the server config). A reload that would drop more than reload.maxDropShare of the machines is held back until confirmed with --force (or SIGHUP to the server). Exit 1 when held back or invalid.',
  examples: ['rolecast reload', 'rolecast reload --force', 'ROLECAST_TOKEN=... rolecast reload --url http://10.0.0.1:8080'],
};
