/**
 * The connection to the site's PostgreSQL: a small pool for queries and one dedicated client that
 * LISTENs for the other servers' changes. Whether the database is reachable is one flag every store
 * reads: a connection error anywhere marks it down, and a reconnect loop (backoff up to 2 s) brings it
 * back, re-LISTENs, and lets every store resync its cache and write what it queued meanwhile.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import pg from 'pg';
import type { Logger } from '../../log.js';
import { RolecastError } from '../../errors.js';
import { migrate } from './migrations.js';

export interface PgHealth {
  up: boolean;
  /** When the current up/down state began (ISO 8601). */
  since: string;
  error?: string;
}

/** SQLSTATE classes 08 (connection exception) and 57 (operator intervention: shutdown), or a socket error. */
export function isConnectionError(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) return code.startsWith('08') || code.startsWith('57');
  const msg = (err as Error).message ?? '';
  return typeof code === 'string' || /terminated|timeout|ECONN|ENOENT|EPIPE|not queryable|Connection/i.test(msg);
}

export class StateUnavailableError extends RolecastError {
  constructor(what: string, cause?: unknown) {
    super('E_STATE_UNAVAILABLE', `${what}: the state database is unreachable; retry when /healthz says state ok`, { cause });
  }
}

type Handler = (payload: Record<string, unknown>) => void;

/** Every store's channel. A link for the leases alone (the DHCP thread's) listens on rolecast_leases only. */
const CHANNELS = ['rolecast_leases', 'rolecast_events', 'rolecast_served', 'rolecast_discovered', 'rolecast_power', 'rolecast_profiles'];

export class PgLink {
  readonly pool: pg.Pool;
  /** This process's name in rows it writes and in notifications (so it skips its own). */
  readonly serverId = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  private readonly ownA = `{"s" : ${JSON.stringify(this.serverId)}`;
  private readonly ownB = `{"s": ${JSON.stringify(this.serverId)}`;
  private listener: pg.Client | undefined;
  private state: PgHealth = { up: false, since: new Date().toISOString() };
  private readonly handlers = new Map<string, Handler[]>();
  private readonly resyncs: Array<() => Promise<void>> = [];
  private readonly ups: Array<() => void> = [];
  private reconnecting: Promise<void> | undefined;
  private ping: NodeJS.Timeout | undefined;
  private closed = false;
  /** The schema is known to be current (migrated by this link). A link started down migrates on its first connect. */
  private migrated = false;

  private constructor(private readonly url: string, private readonly logger: Logger, private readonly channels: readonly string[] = CHANNELS) {
    this.pool = new pg.Pool({ connectionString: url, max: 4, connectionTimeoutMillis: 2000, query_timeout: 10_000, idleTimeoutMillis: 30_000 });
    // An idle pooled client whose server went away: not a crash, a reason to check the link.
    this.pool.on('error', (err) => this.down(err));
  }

  /**
   * Connect, migrate the schema and start listening. A database unreachable at start is an error,
   * unless `startDown`: then the link starts down and connects (and migrates) by itself when it can —
   * a server starts degraded from its cached profiles (site.ts) rather than not at all.
   */
  static async open(url: string, logger: Logger, opts: { startDown?: boolean; channels?: readonly string[] } = {}): Promise<PgLink> {
    const link = new PgLink(url, logger, opts.channels);
    try {
      await link.migrate();
      await link.listen();
    } catch (err) {
      if (opts.startDown && !(err instanceof RolecastError) && isConnectionError(err)) {
        link.state = { up: false, since: new Date().toISOString(), error: (err as Error).message };
        logger.error({ err }, 'state database unreachable at start: starting degraded, reconnecting by itself');
        link.down(err);
        link.startPing();
        return link;
      }
      await link.pool.end().catch(() => undefined);
      if (err instanceof RolecastError) throw err;
      throw new RolecastError('E_STATE_UNAVAILABLE', `cannot reach the state database (${redact(url)}): ${(err as Error).message}`, { cause: err });
    }
    link.setUp(true);
    link.startPing();
    return link;
  }

  private async migrate(): Promise<void> {
    if (this.migrated) return;
    const c = await this.pool.connect();
    try { await migrate(c); } finally { c.release(); }
    this.migrated = true;
  }

  private startPing(): void {
    this.ping = setInterval(() => { void this.check(); }, 1000);
    this.ping.unref();
  }

  get up(): boolean { return this.state.up; }
  health(): PgHealth { return { ...this.state }; }

  /** Run `fn` for every notification on `channel` from another server. */
  on(channel: string, fn: Handler): void {
    const list = this.handlers.get(channel) ?? [];
    list.push(fn);
    this.handlers.set(channel, list);
  }

  /** Called after every reconnect, before the link counts as up (in registration order): reload caches. */
  onReconnect(fn: () => Promise<void>): void {
    this.resyncs.push(fn);
  }

  /** Called each time the link comes up again: write what was queued meanwhile. */
  onUp(fn: () => void): void {
    this.ups.push(fn);
  }

  /** A query failed: if it was the connection, mark the link down (the reconnect loop takes over). */
  failed(err: unknown): boolean {
    if (!isConnectionError(err)) return false;
    this.down(err);
    return true;
  }

  private async listen(): Promise<void> {
    const c = new pg.Client({ connectionString: this.url, connectionTimeoutMillis: 2000, query_timeout: 5000 });
    c.on('error', (err) => this.down(err));
    c.on('end', () => { if (this.listener === c) this.down(new Error('listener connection ended')); });
    c.on('notification', (n) => this.dispatch(n.channel, n.payload));
    await c.connect();
    for (const ch of this.channels) {
      await c.query(`LISTEN ${ch}`);
    }
    this.listener = c;
  }

  private dispatch(channel: string, payload: string | undefined): void {
    // Our own notifications come back too (every lease change, every event batch): skipped before
    // parsing. Both json_build_object and jsonb put "s" first.
    if (payload?.startsWith(this.ownA) || payload?.startsWith(this.ownB)) return;
    let p: Record<string, unknown>;
    try {
      p = JSON.parse(payload ?? '{}') as Record<string, unknown>;
    } catch {
      this.logger.debug({ channel }, 'state: unreadable notification dropped');
      return;
    }
    if (p.s === this.serverId) return;
    for (const fn of this.handlers.get(channel) ?? []) {
      try { fn(p); } catch (err) { this.logger.error({ err, channel }, 'state: notification handler failed'); }
    }
  }

  private setUp(up: boolean, err?: unknown): void {
    if (this.state.up === up) return;
    this.state = { up, since: new Date().toISOString(), ...(err ? { error: (err as Error).message } : {}) };
    if (up) {
      this.logger.info('state database reachable: shared state in use');
      for (const fn of this.ups) fn();
    }
    else this.logger.error({ err }, 'state database unreachable: serving reserved machines from the last snapshot, queueing events, refusing pool allocations');
  }

  private down(err: unknown): void {
    if (this.closed) return;
    this.setUp(false, err);
    const l = this.listener;
    this.listener = undefined;
    if (l) l.end().catch(() => undefined);
    this.reconnecting ??= this.reconnect().finally(() => {
      this.reconnecting = undefined;
      // Down again between the loop's success and this finally: that down() found a reconnect running.
      if (!this.state.up && !this.closed) this.down(new Error(this.state.error ?? 'state database unreachable'));
    });
  }

  private async reconnect(): Promise<void> {
    for (let delay = 250; !this.closed; delay = Math.min(delay * 2, 2000)) {
      await new Promise((r) => setTimeout(r, delay));
      if (this.closed) return;
      try {
        await this.migrate();
        await this.listen();
        for (const fn of this.resyncs) await fn();
        this.setUp(true);
        return;
      } catch (err) {
        const l = this.listener;
        this.listener = undefined;
        if (l) await l.end().catch(() => undefined);
        this.logger.debug({ err }, 'state database still unreachable');
      }
    }
  }

  /** A cheap round trip on the listener: a silently dead link (network gone) is found within a second or two. */
  private async check(): Promise<void> {
    const l = this.listener;
    if (!l || !this.state.up) return;
    try { await l.query('SELECT 1'); } catch (err) { this.down(err); }
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.ping);
    const l = this.listener;
    this.listener = undefined;
    if (l) await l.end().catch(() => undefined);
    await this.pool.end().catch(() => undefined);
  }
}

/** The URL without its password, for messages. */
export function redact(url: string): string {
  return url.replace(/\/\/([^:/@]+):[^@/]*@/, '//$1:***@');
}
