/**
 * Before `assign --reboot` or `boot-once --reboot` powers a machine: the running server must already
 * serve the edited profiles, or the machine boots its old role. The server applies an edit once the
 * files have settled (reload.settleMs, 2 s) and a VM whose iPXE gets an RA asks for its script ~10 s
 * after power on — a real box with a fast POST can be quicker still. So the CLI asks the server to
 * reload now when it holds an admin token, then reads /healthz until it reports the edited version.
 * No server answering: nothing serves old profiles, and the machine boots whatever one starts with.
 */
import type { Inventory } from '../inventory/types.js';
import { RolecastError } from '../errors.js';
import { applySite, type Loaded } from './common.js';

const POLL_MS = 200;

export interface ServingCheck {
  /** The server's API base URL that was asked. */
  url: string;
  outcome: 'serving' | 'no-server';
}

function apiUrl(l: Loaded, inv: Inventory): string {
  const cfg = applySite(l, inv);
  const host = cfg.http.host === '0.0.0.0' || cfg.http.host === '::' ? '127.0.0.1' : cfg.http.host;
  return `http://${host.includes(':') ? `[${host}]` : host}:${cfg.http.port}`;
}

async function servedVersion(url: string): Promise<string | undefined> {
  const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2000) });
  const body = await res.json().catch(() => ({})) as { version?: unknown };
  return typeof body.version === 'string' ? body.version : undefined;
}

/** Wait (at most reload.settleMs + 10 s) until the server at the config's address serves `inv`. */
export async function untilServing(l: Loaded, inv: Inventory): Promise<ServingCheck> {
  if (!l.cfg.http.enabled) return { url: '', outcome: 'no-server' };
  const url = apiUrl(l, inv);
  const want = inv.version.slice(0, 12);
  try {
    if (await servedVersion(url) === want) return { url, outcome: 'serving' };
  } catch {
    return { url, outcome: 'no-server' };
  }
  const token = process.env.ROLECAST_TOKEN ?? l.cfg.http.tokens?.admin?.[0] ?? l.cfg.http.token;
  if (token) {
    await fetch(`${url}/api/reload`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: '{}', signal: AbortSignal.timeout(5000) }).catch(() => undefined);
  }
  const until = Date.now() + l.cfg.reload.settleMs + 10_000;
  let seen: string | undefined;
  while (Date.now() < until) {
    seen = await servedVersion(url).catch(() => seen);
    if (seen === want) return { url, outcome: 'serving' };
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
  throw new RolecastError('E_NOT_SERVING', `the rolecast server at ${url} still serves profiles version ${seen ?? '?'}, not the edited ${want}: not rebooting into the old one (its log says why; rolecast reload [--force])`);
}
