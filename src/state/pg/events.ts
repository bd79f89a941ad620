/**
 * The boot-event log in PostgreSQL: append-only, ordered site-wide by id. Every insert NOTIFYs, so the
 * SSE stream and the timelines of every server show what any server recorded. Local subscribers see an
 * event at once (emit is synchronous, the DHCP/TFTP/HTTP paths never wait); the write follows in
 * batches. With the database unreachable, events wait in a bounded queue and are written, in order,
 * when it is back; each server then replays the others' events it missed to its subscribers.
 */
import type { BootEvent } from '../../events/types.js';
import type { Logger } from '../../log.js';
import type { EventLog } from '../types.js';
import type { PgLink } from './link.js';

const PER_MAC = 200;
const BATCH = 500;
/** Beyond this many unwritten events the oldest are dropped (and counted in the log): memory is bounded. */
const MAX_QUEUE = 100_000;

interface Row { id: string; mac: string; stage: string; at: Date; host: string | null; detail: string | null; address: string | null; server?: string }

export class PgEventLog implements EventLog {
  private readonly byMac = new Map<string, BootEvent[]>();
  private readonly subscribers = new Set<(e: BootEvent) => void>();
  private queue: BootEvent[] = [];
  private writing: Promise<void> | undefined;
  private lastId = 0n;
  /** Ids the last catch-up delivered: their notifications, if they also arrive, are not delivered twice. */
  private replayed = new Set<bigint>();
  private dropped = 0;

  private constructor(private readonly link: PgLink, private readonly logger: Logger, private readonly now: () => Date) {}

  static async open(link: PgLink, logger: Logger, now: () => Date = () => new Date()): Promise<PgEventLog> {
    const log = new PgEventLog(link, logger, now);
    await log.load();
    link.on('rolecast_events', (p) => log.fromOther(p));
    link.onReconnect(() => log.catchUp());
    link.onUp(() => log.kick());
    return log;
  }

  /** The last PER_MAC events of every machine. */
  private async load(): Promise<void> {
    const r = await this.link.pool.query<Row>(
      `SELECT id, mac, stage, at, host, detail, address FROM (
         SELECT *, row_number() OVER (PARTITION BY mac ORDER BY id DESC) AS n FROM events) e
       WHERE n <= ${PER_MAC} ORDER BY id`);
    for (const row of r.rows) this.remember(toEvent(row), BigInt(row.id));
  }

  /** After an outage: the events other servers wrote meanwhile, to the timelines and subscribers. */
  private async catchUp(): Promise<void> {
    const r = await this.link.pool.query<Row>(
      'SELECT id, mac, stage, at, host, detail, address, server FROM events WHERE id > $1 AND server <> $2 ORDER BY id LIMIT 100000',
      [this.lastId.toString(), this.link.serverId]);
    this.replayed = new Set(r.rows.map((row) => BigInt(row.id)));
    for (const row of r.rows) this.deliver({ ...toEvent(row), ...(row.server ? { server: row.server } : {}) }, BigInt(row.id));
  }

  private remember(e: BootEvent, id?: bigint): void {
    if (id !== undefined && id > this.lastId) this.lastId = id;
    const list = this.byMac.get(e.mac) ?? [];
    list.push(e);
    if (list.length > PER_MAC) list.splice(0, list.length - PER_MAC);
    this.byMac.set(e.mac, list);
  }

  private deliver(e: BootEvent, id?: bigint): void {
    this.remember(e, id);
    for (const fn of this.subscribers) {
      try { fn(e); } catch (err) { this.logger.error({ err }, 'event subscriber failed'); }
    }
  }

  private fromOther(p: Record<string, unknown>): void {
    if (typeof p.mac !== 'string' || typeof p.stage !== 'string' || typeof p.at !== 'string') return;
    const id = typeof p.id === 'number' || typeof p.id === 'string' ? BigInt(p.id) : undefined;
    // Ids are handed out at insert and notifications come at commit, so ids from two servers can arrive
    // out of order: only skip what a catch-up already delivered.
    if (id !== undefined && this.replayed.delete(id)) return;
    const e = { mac: p.mac, stage: p.stage, at: new Date(p.at).toISOString() } as BootEvent;
    for (const k of ['host', 'detail', 'address'] as const) if (typeof p[k] === 'string') e[k] = p[k];
    if (typeof p.s === 'string') e.server = p.s;
    this.deliver(e, id);
  }

  emit(event: Omit<BootEvent, 'at'> & { at?: string }): void {
    if (!event.mac) return;
    const e: BootEvent = { ...event, at: event.at ?? this.now().toISOString() };
    this.deliver(e);
    this.queue.push(e);
    if (this.queue.length > MAX_QUEUE) {
      this.dropped += this.queue.length - MAX_QUEUE;
      this.queue.splice(0, this.queue.length - MAX_QUEUE);
    }
    this.kick();
  }

  /** Events recorded here and not yet in the database. */
  get backlog(): number { return this.queue.length; }

  private kick(): void {
    if (!this.link.up) return;
    this.writing ??= this.write().finally(() => { this.writing = undefined; });
  }

  private async write(): Promise<void> {
    while (this.queue.length && this.link.up) {
      if (this.dropped) {
        this.logger.error({ dropped: this.dropped }, 'boot events dropped: the state database was unreachable too long');
        this.dropped = 0;
      }
      const batch = this.queue.slice(0, BATCH);
      try {
        await this.link.pool.query(
          `WITH e AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(mac text, stage text, at text, host text, detail text, address text)),
                ins AS (INSERT INTO events (mac, stage, at, host, detail, address, server)
                        SELECT mac, stage, at::timestamptz, host, detail, address, $2 FROM e
                        RETURNING id, mac, stage, at, host, detail, address)
           SELECT count(pg_notify('rolecast_events', json_build_object('s', $2::text, 'id', id, 'mac', mac, 'stage', stage, 'at', at,
                  'host', host, 'detail', left(detail, 2000), 'address', address)::text)) FROM ins`,
          [JSON.stringify(batch), this.link.serverId]);
        this.queue.splice(0, batch.length);
      } catch (err) {
        if (!this.link.failed(err)) {
          // Not the connection: these events cannot be stored (bad data); say so rather than retry forever.
          this.logger.error({ err, events: batch.length }, 'cannot write boot events; dropped');
          this.queue.splice(0, batch.length);
        }
        return;
      }
    }
  }

  timeline(mac: string): BootEvent[] {
    return [...(this.byMac.get(mac) ?? [])];
  }

  last(mac: string): BootEvent | undefined {
    return this.byMac.get(mac)?.at(-1);
  }

  subscribe(fn: (e: BootEvent) => void): () => void {
    this.subscribers.add(fn);
    return () => this.subscribers.delete(fn);
  }

  async close(): Promise<void> {
    await this.writing;
    if (this.link.up && this.queue.length) await this.write();
    if (this.queue.length) this.logger.warn({ events: this.queue.length }, 'boot events not written at shutdown (state database unreachable)');
  }
}

function toEvent(row: Row): BootEvent {
  const e = { mac: row.mac, stage: row.stage, at: row.at.toISOString() } as BootEvent;
  if (row.host !== null) e.host = row.host;
  if (row.detail !== null) e.detail = row.detail;
  if (row.address !== null) e.address = row.address;
  return e;
}
