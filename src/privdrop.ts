/**
 * Started as root, rolecast binds its privileged ports (67, 69, 80) and then becomes its service user:
 * setgroups/setgid/setuid, after which the kernel clears every capability (no PR_SET_KEEPCAPS), so a bug in
 * a packet parser runs with no privilege. The state directory is handed to that user first, so the leases,
 * events and server key written during start stay writable. Under systemd the unit starts rolecast as the
 * user with only CAP_NET_BIND_SERVICE and none of this runs.
 */
import { execFileSync } from 'node:child_process';
import { accessSync, chownSync, constants, existsSync, lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { RolecastError } from './errors.js';
import type { Logger } from './log.js';

export const SERVICE_USER = 'rolecast';

export interface Account { name: string; uid: number; gid: number; home: string }

// Looked up once per name and process: serve asks before binding and again for radvd's user (a getent
// process each, ~30 ms of a start).
const accounts = new Map<string, Account | undefined>();

/** The account through NSS (getent), so LDAP/sssd users work as well as /etc/passwd ones. */
export function lookupUser(name: string): Account | undefined {
  if (accounts.has(name)) return accounts.get(name);
  let acct: Account | undefined;
  try {
    const f = execFileSync('getent', ['passwd', name], { encoding: 'utf8' }).trim().split(':');
    if (f.length >= 7) acct = { name: f[0]!, uid: Number(f[2]), gid: Number(f[3]), home: f[5]! };
  } catch { /* no such user */ }
  accounts.set(name, acct);
  return acct;
}

function chownTree(dir: string, uid: number, gid: number): void {
  chownSync(dir, uid, gid);
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = lstatSync(p);
    if (st.isSymbolicLink()) continue; // never follow a link out of the state directory
    if (st.isDirectory()) chownTree(p, uid, gid);
    else chownSync(p, uid, gid);
  }
}

/**
 * The user to become, or undefined to stay as we are: `user` from the config/flag ("root" keeps root);
 * unset, the `rolecast` system user when it exists (the Debian package creates it).
 */
export function targetUser(configured: string | undefined): Account | undefined {
  if (configured === 'root') return undefined;
  const name = configured ?? SERVICE_USER;
  const acct = lookupUser(name);
  if (!acct && configured) throw new RolecastError('E_NO_USER', `user "${configured}" (config user: / --user) does not exist: create it (adduser --system ${configured}) or name another`);
  return acct;
}

/** Become `acct` if we are root; returns what happened, for the log. */
export function dropPrivileges(acct: Account | undefined, stateDirs: readonly string[], logger: Logger): string {
  if (process.getuid?.() !== 0) return 'not root: nothing to drop';
  if (!acct) {
    logger.warn('running as root with every capability: set `user:` in the server config (or install the Debian package, which creates the rolecast user)');
    return 'stayed root';
  }
  for (const d of stateDirs) if (existsSync(d)) chownTree(d, acct.uid, acct.gid);
  process.setgroups?.([acct.gid]);
  process.setgid?.(acct.gid);
  process.setuid?.(acct.uid);
  logger.info({ user: acct.name, uid: acct.uid, gid: acct.gid }, 'listeners bound; running as the service user without capabilities');
  return `now ${acct.name}`;
}

/** Whether the (new) user can write `dir`; a warning names what will not work otherwise. */
export function warnIfReadOnly(dir: string, what: string, logger: Logger): void {
  try { accessSync(dir, constants.W_OK); } catch { logger.warn({ dir }, `${dir} is not writable by this user: ${what}`); }
}
