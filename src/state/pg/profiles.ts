/**
 * Profiles in PostgreSQL: the same YAML texts as the profiles directory, kept as numbered versions
 * (each a complete, validated set; texts stored once by content hash). push loads a set as a new
 * version, rollback makes an old version's texts the newest, edits (assign, adopt, boot-once, the API)
 * change one file's text with compare-and-swap. Every new version NOTIFYs, and every server rebuilds
 * its snapshot from it. Validation is the loader's own parseSources(), so messages are the same.
 */
import { createHash } from 'node:crypto';
import type pg from 'pg';
import { RolecastError } from '../../errors.js';
import { parseSources, versionOf, type SourceFile } from '../../inventory/load.js';
import type { EditOptions, ProfileEditor } from '../types.js';
import type { PgLink } from './link.js';
import { StateUnavailableError } from './link.js';

export interface ProfileVersion {
  version: number;
  at: string;
  who: string;
  what: string;
  /** Files added (+name), removed (-name) or changed (name) against the version before. */
  changed: string[];
}

export const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

export class PgProfiles implements ProfileEditor {
  private readonly listeners: Array<(version: number) => void> = [];

  constructor(private readonly link: PgLink) {
    link.on('rolecast_profiles', (p) => { if (typeof p.version === 'number') this.changed(p.version); });
    // A version pushed while we were disconnected (or one we have never read: a server started while
    // the database was down): reload once the link is up again, whatever it is.
    link.onUp(() => this.changed(-1));
  }

  /** Called with each new version (from any server, this one included). */
  onChange(fn: (version: number) => void): void {
    this.listeners.push(fn);
  }

  private changed(version: number): void {
    for (const fn of this.listeners) fn(version);
  }

  /** The current version and its files (version 0 and no files: nothing pushed yet). */
  async current(): Promise<{ version: number; sources: SourceFile[] }> {
    const c = await this.connect('read the profiles');
    try { return await currentOf(c); } finally { c.release(); }
  }

  async sourcesOf(version: number): Promise<SourceFile[]> {
    const r = await this.link.pool.query<SourceFile>(
      'SELECT f.name, b.text FROM profile_files f JOIN profile_blobs b USING (hash) WHERE f.version = $1 ORDER BY f.name', [version]);
    if (r.rowCount === 0) throw new RolecastError('E_NOT_FOUND', `no profile version ${version} (rolecast profiles log lists them)`);
    return r.rows;
  }

  /** Validate and store a complete set as the next version; an identical set makes no new version. */
  async push(sources: SourceFile[], who: string, what: string): Promise<{ version: number; created: boolean }> {
    parseSources(sources); // throws ProfileError with every issue, exactly as for a directory
    return this.tx('push the profiles', async (c) => {
      const head = await currentOf(c, true);
      if (head.version > 0 && versionOf(head.sources) === versionOf(sources)) return { version: head.version, created: false };
      return { version: await insertVersion(c, head, sources, who, what, this.link.serverId), created: true };
    });
  }

  async rollback(version: number, who: string): Promise<{ version: number; created: boolean }> {
    const sources = await this.sourcesOf(version);
    return this.push(sources, who, `rollback to version ${version}`);
  }

  async log(limit = 50): Promise<ProfileVersion[]> {
    const r = await this.link.pool.query<{ version: number; created_at: Date; who: string; what: string; changed: string[] }>(
      'SELECT version, created_at, who, what, changed FROM profile_versions ORDER BY version DESC LIMIT $1', [limit]);
    return r.rows.map((x) => ({ version: x.version, at: x.created_at.toISOString(), who: x.who, what: x.what, changed: x.changed }));
  }

  async read(file: string): Promise<{ text: string; hash: string }> {
    const { sources } = await this.current();
    const src = sources.find((s) => s.name === file);
    if (!src) throw new RolecastError('E_NOT_FOUND', `no profile file "${file}" in the database's current version`);
    return { text: src.text, hash: sha256(src.text) };
  }

  /**
   * One file's text changed by `fn`, serialised site-wide (the head row is locked for the transaction)
   * and compare-and-swap on that file's content hash when the caller passes the hash it based its edit on.
   */
  async edit(file: string, fn: (text: string) => string, opts: EditOptions = {}): Promise<{ hash: string }> {
    return this.tx('edit the profiles', async (c) => {
      const head = await currentOf(c, true);
      const src = head.sources.find((s) => s.name === file);
      if (!src) throw new RolecastError('E_NOT_FOUND', `no profile file "${file}" in the database's current version${head.version === 0 ? ' (nothing pushed yet: rolecast profiles push)' : ''}`);
      if (opts.expectHash !== undefined && opts.expectHash !== sha256(src.text)) {
        throw new RolecastError('E_CONFLICT', `${file} changed since it was read (version ${head.version}); read it again and redo the edit`);
      }
      const text = fn(src.text);
      if (text === src.text) return { hash: sha256(text) };
      const next = head.sources.map((s) => (s === src ? { ...s, text } : s));
      parseSources(next); // the edited set must be valid as a whole; ProfileError names file:line:col
      await insertVersion(c, head, next, opts.who ?? 'rolecast', opts.what ?? `edit ${file}`, this.link.serverId);
      return { hash: sha256(text) };
    });
  }

  private async connect(what: string): Promise<pg.PoolClient> {
    try {
      return await this.link.pool.connect();
    } catch (err) {
      this.link.failed(err);
      throw new StateUnavailableError(`cannot ${what}`, err);
    }
  }

  private async tx<T>(what: string, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    const c = await this.connect(what);
    try {
      await c.query('BEGIN');
      const out = await fn(c);
      await c.query('COMMIT');
      return out;
    } catch (err) {
      await c.query('ROLLBACK').catch(() => undefined);
      if (!(err instanceof RolecastError) && this.link.failed(err)) throw new StateUnavailableError(`cannot ${what}`, err);
      throw err;
    } finally {
      c.release();
    }
  }
}

/** The PostgreSQL profile store behind a ProfileEditor (versions, push, current), or a clear error. */
export function pgProfiles(p: ProfileEditor): PgProfiles {
  if (p instanceof PgProfiles) return p;
  throw new RolecastError('E_USAGE', 'profile versions are kept in PostgreSQL only (state: { backend: postgres, url }); these profiles are a directory');
}

async function currentOf(c: pg.ClientBase, lock = false): Promise<{ version: number; sources: SourceFile[] }> {
  const h = await c.query<{ version: number }>(`SELECT version FROM profile_head${lock ? ' FOR UPDATE' : ''}`);
  const version = h.rows[0]?.version ?? 0;
  if (version === 0) {
    // Nobody pushed yet: serialise the first push too (the head row does not exist to lock).
    if (lock) await c.query("SELECT pg_advisory_xact_lock(hashtext('rolecast_profile_head'))");
    return { version: 0, sources: [] };
  }
  const f = await c.query<SourceFile>(
    'SELECT f.name, b.text FROM profile_files f JOIN profile_blobs b USING (hash) WHERE f.version = $1 ORDER BY f.name', [version]);
  return { version, sources: f.rows };
}

function changesOf(before: SourceFile[], after: SourceFile[]): string[] {
  const old = new Map(before.map((s) => [s.name, s.text]));
  const out: string[] = [];
  for (const s of after) {
    if (!old.has(s.name)) out.push(`+${s.name}`);
    else if (old.get(s.name) !== s.text) out.push(s.name);
    old.delete(s.name);
  }
  for (const name of old.keys()) out.push(`-${name}`);
  return out.sort((a, b) => a.replace(/^[+-]/, '').localeCompare(b.replace(/^[+-]/, '')));
}

async function insertVersion(c: pg.ClientBase, head: { version: number; sources: SourceFile[] }, sources: SourceFile[], who: string, what: string, origin: string): Promise<number> {
  if (head.version === 0) {
    // Two first pushes racing: whoever gets here second sees the head the first made.
    const again = await c.query<{ version: number }>('SELECT version FROM profile_head');
    if (again.rowCount) throw new RolecastError('E_CONFLICT', 'another server pushed the first profile version meanwhile; try again');
  }
  const version = head.version + 1;
  await c.query(
    `INSERT INTO profile_blobs (hash, text) SELECT h, t FROM unnest($1::text[], $2::text[]) AS x(h, t) ON CONFLICT (hash) DO NOTHING`,
    [sources.map((s) => sha256(s.text)), sources.map((s) => s.text)]);
  await c.query('INSERT INTO profile_versions (version, who, what, changed, set_hash) VALUES ($1, $2, $3, $4, $5)',
    [version, who, what, changesOf(head.sources, sources), versionOf(sources)]);
  await c.query('INSERT INTO profile_files (version, name, hash) SELECT $1, n, h FROM unnest($2::text[], $3::text[]) AS x(n, h)',
    [version, sources.map((s) => s.name), sources.map((s) => sha256(s.text))]);
  await c.query(`INSERT INTO profile_head (one, version) VALUES (true, $1) ON CONFLICT (one) DO UPDATE SET version = EXCLUDED.version`, [version]);
  await c.query("SELECT pg_notify('rolecast_profiles', json_build_object('s', '', 'version', $1::int, 'by', $2::text)::text)", [version, origin]);
  return version;
}
