/**
 * The small shared stores: what each machine was last served (so `rolecast diff` is site-wide),
 * discovered machines, and BMC power actions. Each keeps its table in memory (reads are synchronous),
 * writes through a PgWriter, NOTIFYs, and applies the other servers' notifications to its cache.
 */
import type { Logger } from '../../log.js';
import type { DiscoveredRecord, DiscoveredStore, PowerAction, PowerLog, ServedEntry, ServedRecord, ServedStore } from '../types.js';
import type { PgLink } from './link.js';
import { PgWriter } from './writer.js';
import { RecentByKey } from '../recent.js';

export class PgServedStore implements ServedStore {
  private map: Record<string, ServedEntry> = {};
  private constructor(private readonly link: PgLink, private readonly writer: PgWriter) {}

  static async open(link: PgLink, logger: Logger): Promise<PgServedStore> {
    const s = new PgServedStore(link, new PgWriter(link, logger));
    await s.reload();
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
    await s.reload();
    link.on('rolecast_discovered', (p) => {
      if (typeof p.mac !== 'string') return;
      if (p.rec && typeof p.rec === 'object') s.map.set(p.mac, p.rec as DiscoveredRecord);
      else s.map.delete(p.mac);
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
       SELECT pg_notify('rolecast_discovered', json_build_object('s', $3::text, 'mac', $1::text, 'rec', $2::jsonb)::text) FROM up`,
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

export class PgPowerLog implements PowerLog {
  private readonly byHost = new RecentByKey<PowerAction>(PER_HOST);
  private constructor(private readonly link: PgLink, private readonly writer: PgWriter) {}

  static async open(link: PgLink, logger: Logger): Promise<PgPowerLog> {
    const s = new PgPowerLog(link, new PgWriter(link, logger));
    const r = await link.pool.query<{ a: PowerAction }>(
      `SELECT json_strip_nulls(json_build_object('host', host, 'op', op, 'at', at, 'by', "by", 'ok', ok, 'state', state, 'error', error, 'ms', ms)) AS a
       FROM (SELECT *, row_number() OVER (PARTITION BY host ORDER BY id DESC) AS n FROM power_actions) p WHERE n <= ${PER_HOST} ORDER BY id`);
    for (const row of r.rows) s.remember({ ...row.a, at: new Date(row.a.at).toISOString() });
    link.on('rolecast_power', (p) => {
      const { s: _origin, ...a } = p;
      if (typeof a.host === 'string' && typeof a.op === 'string' && typeof a.at === 'string' && typeof a.ok === 'boolean') s.remember(a as unknown as PowerAction);
    });
    return s;
  }

  private remember(a: PowerAction): void {
    this.byHost.add(a.host, a);
  }

  record(a: PowerAction): Promise<void> {
    this.remember(a);
    return this.writer.write(`power ${a.host} ${a.op}`, (l) => l.pool.query(
      `WITH ins AS (INSERT INTO power_actions (host, op, at, "by", ok, state, error, ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id)
       SELECT pg_notify('rolecast_power', $9::jsonb::text) FROM ins`,
      [a.host, a.op, a.at, a.by ?? null, a.ok, a.state ?? null, a.error ?? null, a.ms ?? null, JSON.stringify({ ...a, s: l.serverId })]));
  }

  list(host?: string): PowerAction[] {
    if (host !== undefined) return this.byHost.get(host);
    return this.byHost.all().sort((a, b) => a.at.localeCompare(b.at));
  }

  close(): Promise<void> { return this.writer.close(); }
}
