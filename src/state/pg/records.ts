/**
 * The small shared stores: what each machine was last served (so `rolecast diff` is site-wide),
 * discovered machines, and BMC power actions. Each keeps its table in memory (reads are synchronous),
 * writes through a PgWriter, NOTIFYs, and applies the other servers' notifications to its cache.
 *
 * A NOTIFY payload is limited to 8000 bytes: a served record (MAC, host, role, hash, time: a few hundred
 * bytes) goes whole; a discovered record (hardware facts of any size) and a power action (a BMC's error
 * text) go as their key only, and the listeners read the row, one at a time in notification order.
 */
import type { Logger } from '../../log.js';
import type { DiscoveredRecord, DiscoveredStore, PowerAction, PowerLog, ServedEntry, ServedRecord, ServedStore } from '../types.js';
import type { PgLink } from './link.js';
import { PgWriter } from './writer.js';
import { RecentByKey } from '../recent.js';

/** Run fetches one after another (a later notification's read never lands before an earlier one's). */
class InOrder {
  private chain: Promise<void> = Promise.resolve();
  constructor(private readonly link: PgLink, private readonly logger: Logger) {}
  run(what: string, fn: () => Promise<void>): void {
    this.chain = this.chain.then(fn).catch((err: unknown) => {
      if (!this.link.failed(err)) this.logger.error({ err, what }, 'state: cannot read a changed row');
      // Down: the reconnect reloads the whole table.
    });
  }
}

export class PgServedStore implements ServedStore {
  private map: Record<string, ServedEntry> = {};
  private constructor(private readonly link: PgLink, private readonly writer: PgWriter) {}

  static async open(link: PgLink, logger: Logger): Promise<PgServedStore> {
    const s = new PgServedStore(link, new PgWriter(link, logger));
    if (link.up) await s.reload(); // else (a server started degraded) the reconnect loads it
    link.on('rolecast_served', (p) => {
      if (typeof p.mac === 'string' && typeof p.role === 'string' && typeof p.hash === 'string' && typeof p.at === 'string') {
        s.map[p.mac] = { role: p.role, hash: p.hash, at: new Date(p.at).toISOString(), ...(typeof p.host === 'string' ? { host: p.host } : {}) };
      }
    });
    link.onReconnect(() => s.reload());
    return s;
  }

  private async reload(): Promise<void> {
    const r = await this.link.pool.query<{ mac: string; host: string | null; role: string; hash: string; at: Date }>('SELECT mac, host, role, hash, at FROM served');
    const fresh: Record<string, ServedEntry> = {};
    for (const row of r.rows) fresh[row.mac] = { role: row.role, hash: row.hash, at: row.at.toISOString(), ...(row.host ? { host: row.host } : {}) };
    // Entries recorded here while the link was down are still on their way: keep ours.
    this.map = { ...fresh, ...(this.writer.backlog ? this.map : {}) };
  }

  get(mac: string): ServedEntry | undefined { return this.map[mac]; }
  all(): Readonly<ServedRecord> { return { ...this.map }; }

  record(mac: string, e: ServedEntry): Promise<void> {
    this.map[mac] = e;
    return this.writer.write(`served ${mac}`, (l) => l.pool.query(
      `WITH up AS (INSERT INTO served (mac, host, role, hash, at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (mac) DO UPDATE SET host = EXCLUDED.host, role = EXCLUDED.role, hash = EXCLUDED.hash, at = EXCLUDED.at RETURNING mac)
       SELECT pg_notify('rolecast_served', json_build_object('s', $6::text, 'mac', $1::text, 'host', $2::text, 'role', $3::text, 'hash', $4::text, 'at', $5::text)::text) FROM up`,
      [mac, e.host ?? null, e.role, e.hash, e.at, l.serverId]));
  }

  close(): Promise<void> { return this.writer.close(); }
}

export class PgDiscoveredStore implements DiscoveredStore {
  private map = new Map<string, DiscoveredRecord>();
  private constructor(private readonly link: PgLink, private readonly writer: PgWriter) {}

  static async open(link: PgLink, logger: Logger): Promise<PgDiscoveredStore> {
    const s = new PgDiscoveredStore(link, new PgWriter(link, logger));
    if (link.up) await s.reload();
    const reads = new InOrder(link, logger);
    link.on('rolecast_discovered', (p) => {
      const mac = p.mac;
      if (typeof mac !== 'string') return;
      reads.run(`discovered ${mac}`, async () => {
        const r = await link.pool.query<{ rec: DiscoveredRecord }>('SELECT rec FROM discovered WHERE mac = $1', [mac]);
        const rec = r.rows[0]?.rec;
        if (rec) s.map.set(mac, rec);
        else s.map.delete(mac);
      });
    });
    link.onReconnect(() => s.reload());
    return s;
  }

  private async reload(): Promise<void> {
    const r = await this.link.pool.query<{ mac: string; rec: DiscoveredRecord }>('SELECT mac, rec FROM discovered');
    if (this.writer.backlog) return; // our own unwritten changes win until they are written
    this.map = new Map(r.rows.map((row) => [row.mac, row.rec]));
  }

  list(): DiscoveredRecord[] { return [...this.map.values()].sort((a, b) => a.firstSeen.localeCompare(b.firstSeen)); }
  get(mac: string): DiscoveredRecord | undefined { return this.map.get(mac); }

  put(rec: DiscoveredRecord): Promise<void> {
    this.map.set(rec.mac, rec);
    return this.writer.write(`discovered ${rec.mac}`, (l) => l.pool.query(
      `WITH up AS (INSERT INTO discovered (mac, rec) VALUES ($1, $2::jsonb)
         ON CONFLICT (mac) DO UPDATE SET rec = EXCLUDED.rec, updated_at = now() RETURNING mac)
       SELECT pg_notify('rolecast_discovered', json_build_object('s', $3::text, 'mac', $1::text)::text) FROM up`,
      [rec.mac, JSON.stringify(rec), l.serverId]));
  }

  async remove(mac: string): Promise<boolean> {
    const had = this.map.delete(mac);
    await this.writer.write(`discovered ${mac} removed`, (l) => l.pool.query(
      `WITH d AS (DELETE FROM discovered WHERE mac = $1 RETURNING mac)
       SELECT pg_notify('rolecast_discovered', json_build_object('s', $2::text, 'mac', $1::text)::text) FROM d`, [mac, l.serverId]));
    return had;
  }

  close(): Promise<void> { return this.writer.close(); }
}

/** Power actions kept in memory per host (the last PER_HOST); the table keeps them all. */
const PER_HOST = 200;
const ACTION = `json_strip_nulls(json_build_object('host', host, 'op', op, 'at', at, 'by', "by", 'ok', ok, 'state', state, 'error', error, 'ms', ms))`;

export class PgPowerLog implements PowerLog {
  private readonly byHost = new RecentByKey<PowerAction>(PER_HOST);
  /** The newest row id this cache holds (loaded, notified, or written here): a reconnect reads past it. */
  private lastId = 0n;
  private constructor(private readonly link: PgLink, private readonly writer: PgWriter) {}

  static async open(link: PgLink, logger: Logger): Promise<PgPowerLog> {
    const s = new PgPowerLog(link, new PgWriter(link, logger));
    const window = () => s.read(`SELECT id, ${ACTION} AS a FROM (SELECT *, row_number() OVER (PARTITION BY host ORDER BY id DESC) AS n FROM power_actions) p
       WHERE n <= ${PER_HOST} ORDER BY id`, []);
    let started = link.up;
    if (started) await window();
    const reads = new InOrder(link, logger);
    link.on('rolecast_power', (p) => {
      const id = p.id;
      if (typeof id !== 'number' && typeof id !== 'string') return;
      reads.run(`power action ${id}`, () => s.read(`SELECT id, ${ACTION} AS a FROM power_actions WHERE id = $1`, [String(id)]));
    });
    // Actions other servers recorded while we were disconnected (ours still queued are not in the table
    // yet); started while the database was down: the whole window.
    link.onReconnect(async () => {
      if (started) return s.read(`SELECT id, ${ACTION} AS a FROM power_actions WHERE id > $1 ORDER BY id LIMIT 10000`, [s.lastId.toString()]);
      await window();
      started = true;
    });
    return s;
  }

  private async read(sql: string, params: unknown[]): Promise<void> {
    const r = await this.link.pool.query<{ id: string; a: PowerAction }>(sql, params);
    for (const row of r.rows) {
      this.seen(row.id);
      this.remember({ ...row.a, at: new Date(row.a.at).toISOString() });
    }
  }

  private seen(id: string | undefined): void {
    if (id !== undefined && BigInt(id) > this.lastId) this.lastId = BigInt(id);
  }

  private remember(a: PowerAction): void {
    this.byHost.add(a.host, a);
  }

  record(a: PowerAction): Promise<void> {
    this.remember(a);
    return this.writer.write(`power ${a.host} ${a.op}`, async (l) => {
      const r = await l.pool.query<{ id: string }>(
        `WITH ins AS (INSERT INTO power_actions (host, op, at, "by", ok, state, error, ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id)
         SELECT id, pg_notify('rolecast_power', json_build_object('s', $9::text, 'id', id)::text) FROM ins`,
        [a.host, a.op, a.at, a.by ?? null, a.ok, a.state ?? null, a.error ?? null, a.ms ?? null, l.serverId]);
      this.seen(r.rows[0]?.id);
    });
  }

  list(host?: string): PowerAction[] {
    if (host !== undefined) return this.byHost.get(host);
    return this.byHost.all().sort((a, b) => a.at.localeCompare(b.at));
  }

  close(): Promise<void> { return this.writer.close(); }
}
