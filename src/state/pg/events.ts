/**
 * The boot-event log in PostgreSQL: append-only, ordered site-wide by id. Every written batch NOTIFYs
 * its origin and id range (far under the 8000-byte payload limit, whatever the events hold) and the
 * other servers read those rows, so the SSE stream and the timelines of every server show what any
 * server recorded. Local subscribers see an event at once (emit is synchronous, the DHCP/TFTP/HTTP
 * paths never wait); the write follows in batches, committed without waiting for the WAL flush (a
 * log, not leases: a database crash may lose the last moment's events, as the file store's batches
 * may). With the database unreachable, events wait in a bounded queue and are written, in order, when
 * it is back; each server then replays the others' events it missed to its subscribers. The timelines
 * are the same bounded Timelines as the file store's (unknown MACs capped, least recently heard
 * dropped first).
 */
import type { BootEvent } from '../../events/types.js';
import type { Logger } from '../../log.js';
import type { EventLog } from '../types.js';
import type { PgLink } from './link.js';
import { Timelines, type TimelineLimits } from '../timelines.js';

const BATCH = 2000;
/**
 * A writer that finds fewer than BATCH events waiting first lets more gather for this long: under a
 * DHCP burst (4 events per exchange) a batch then carries hundreds of rows instead of dozens, and
 * PostgreSQL's per-transaction cost (statement, commit, the WAL writer woken for it, the NOTIFY read by
 * every listener) is paid that many times less: at 1000 exchanges/s, 10 ms made ~100 transactions a
 * second of ~40 rows. Other servers see an event that much later; local subscribers see it at once
 * (emit delivers before it queues).
 */
const GATHER_MS = 100;
/** A catch-up reads from this many ids below the highest delivered (other servers' batches still in flight then). */
const CATCH_UP_MARGIN = 5_000n;
/** Other servers' event ids remembered as delivered (a catch-up's re-read and late notifications skip them). */
const SEEN_MAX = 50_000;

/**
 * One batch: one multi-row INSERT from typed arrays (one per column, unnested) and one NOTIFY of its
 * origin and id range, committed without waiting for the WAL flush. A named (prepared) statement: each
 * pooled connection parses and plans it once. Typed arrays rather than a jsonb document: nothing for
 * PostgreSQL to parse per field but the values themselves (measured: ~20-40% less backend CPU per row).
 */
const INSERT_EVENTS = `WITH ins AS (
    INSERT INTO events (mac, stage, at, host, detail, address, verified, server)
    SELECT mac, stage, at, host, detail, address, verified, $8
      FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::text[], $6::text[], $7::boolean[])
        AS x(mac, stage, at, host, detail, address, verified)
    RETURNING id)
  SELECT pg_notify('rolecast_events', json_build_object('s', $8::text, 'from', min(id), 'to', max(id))::text),
         set_config('synchronous_commit', 'off', true)
  FROM ins`;

function columnsOf(batch: readonly BootEvent[], server: string): unknown[] {
  const n = batch.length;
  const mac = new Array<string>(n), stage = new Array<string>(n), at = new Array<string>(n);
  const host = new Array<string | null>(n), detail = new Array<string | null>(n), address = new Array<string | null>(n), verified = new Array<boolean | null>(n);
  for (let i = 0; i < n; i++) {
    const e = batch[i]!;
    mac[i] = e.mac; stage[i] = e.stage; at[i] = e.at;
    host[i] = e.host ?? null; detail[i] = e.detail ?? null; address[i] = e.address ?? null; verified[i] = e.verified ?? null;
  }
  return [mac, stage, at, host, detail, address, verified, server];
}
/** Beyond this many unwritten events the oldest are dropped (and counted in the log): memory is bounded. */
export const MAX_QUEUE = 100_000;
/**
 * Dropped at once when the queue is full, beyond what makes room: one splice per DROP_CHUNK emits. A
 * splice of one event per emit moved the whole queue each time (~30 µs at 100,000): under a DHCP burst
 * with the database behind, or down, that was most of the main thread (a CPU profile: 42% in emit).
 */
const DROP_CHUNK = 10_000;

interface Row { id: string; mac: string; stage: string; at: Date; host: string | null; detail: string | null; address: string | null; server?: string; verified?: boolean | null }

export interface PgEventLogOptions {
  limits?: Partial<TimelineLimits>;
  /** Load the last events of every machine at open (default true; a tool that only appends skips it). */
  load?: boolean;
}

export class PgEventLog implements EventLog {
  private readonly timelines: Timelines;
  private queue: BootEvent[] = [];
  private writing: Promise<void> | undefined;
  private lastId = 0n;
  /** Where the history loaded at open ends: a catch-up never reads below it (those rows are in the timelines). */
  private historyTo = 0n;
  /**
   * Ids of other servers' events delivered here (the last SEEN_MAX): a catch-up reads some of them again
   * (it starts below the highest id delivered) and a notification may arrive for rows a catch-up
   * delivered; neither is delivered twice.
   */
  private readonly seen = new Set<bigint>();
  /** The first id of the lowest batch whose read failed: the next catch-up starts below it. */
  private missedFrom: bigint | undefined;
  private dropped = 0;
  private closing = false;
  /** Reads of other servers' batches, one after another. */
  private reads: Promise<void> = Promise.resolve();

  private constructor(private readonly link: PgLink, private readonly logger: Logger, private readonly now: () => Date, limits: Partial<TimelineLimits>) {
    this.timelines = new Timelines(logger, limits);
  }

  static async open(link: PgLink, logger: Logger, now: () => Date = () => new Date(), opts: PgEventLogOptions = {}): Promise<PgEventLog> {
    const log = new PgEventLog(link, logger, now, opts.limits ?? {});
    const start = () => (opts.load !== false ? log.load() : log.skipHistory());
    let started = link.up;
    if (started) await start();
    link.on('rolecast_events', (p) => log.fromOther(p));
    // After an outage: what the others wrote meanwhile. Started while the database was down: the history.
    link.onReconnect(async () => {
      if (started) return log.catchUp();
      await start();
      started = true;
    });
    link.onUp(() => log.kick());
    return log;
  }

  /** The last `perMac` events of every machine (the timelines bound unknown MACs further). */
  private async load(): Promise<void> {
    const r = await this.link.pool.query<Row>(
      `SELECT id, mac, stage, at, host, detail, address, verified FROM (
         SELECT *, row_number() OVER (PARTITION BY mac ORDER BY id DESC) AS n FROM events) e
       WHERE n <= $1 ORDER BY id`, [this.timelines.limits.perMac]);
    for (const row of r.rows) this.remember(toEvent(row), BigInt(row.id));
    this.historyTo = this.lastId;
  }

  /** Without the history: only where it ends (a catch-up after an outage starts there). */
  private async skipHistory(): Promise<void> {
    const r = await this.link.pool.query<{ id: string | null }>('SELECT max(id) AS id FROM events');
    this.lastId = BigInt(r.rows[0]?.id ?? 0);
    this.historyTo = this.lastId;
  }

  /** One machine's whole timeline from the table (tools: `rolecast events`). */
  async history(mac: string): Promise<BootEvent[]> {
    const r = await this.link.pool.query<Row>(
      'SELECT id, mac, stage, at, host, detail, address, verified, server FROM events WHERE mac = $1 ORDER BY id', [mac]);
    return r.rows.map(toEvent);
  }

  /**
   * After an outage (or a failed read): the events other servers wrote meanwhile, to the timelines and
   * subscribers. Ids are handed out at insert and notified at commit, so the highest id delivered is no
   * boundary: a batch of another server may have taken lower ids and committed while this link was
   * down, and a batch whose read failed lies below later ones that were read. So the catch-up reads from
   * CATCH_UP_MARGIN ids below the highest delivered, or from below the lowest failed batch, whichever
   * is lower (never below the loaded history), and skips what was delivered already.
   */
  private async catchUp(): Promise<void> {
    let from = this.lastId - CATCH_UP_MARGIN;
    const missed = this.missedFrom;
    if (missed !== undefined && missed - 1n < from) from = missed - 1n;
    if (from < this.historyTo) from = this.historyTo;
    const r = await this.link.pool.query<Row>(
      'SELECT id, mac, stage, at, host, detail, address, verified, server FROM events WHERE id > $1 AND server <> $2 ORDER BY id LIMIT 100000',
      [from.toString(), this.link.serverId]);
    if (this.missedFrom === missed) this.missedFrom = undefined;
    for (const row of r.rows) {
      const id = BigInt(row.id);
      if (!this.seen.has(id)) this.deliver({ ...toEvent(row), ...(row.server ? { server: row.server } : {}) }, id);
    }
  }

  private remember(e: BootEvent, id?: bigint): void {
    if (id !== undefined && id > this.lastId) this.lastId = id;
    this.timelines.remember(e);
  }

  private deliver(e: BootEvent, id?: bigint): void {
    if (id !== undefined) {
      if (id > this.lastId) this.lastId = id;
      this.seen.add(id);
      if (this.seen.size > SEEN_MAX) this.seen.delete(this.seen.values().next().value as bigint);
    }
    this.timelines.deliver(e);
  }

  /**
   * Another server wrote a batch: its rows with ids from..to (ids of several servers interleave, so the
   * range is filtered by origin), read in notification order and delivered.
   */
  private fromOther(p: Record<string, unknown>): void {
    const { s: origin, from, to } = p;
    if (typeof origin !== 'string' || (typeof from !== 'number' && typeof from !== 'string') || (typeof to !== 'number' && typeof to !== 'string')) return;
    this.reads = this.reads.then(async () => {
      const r = await this.link.pool.query<Row>(
        'SELECT id, mac, stage, at, host, detail, address, verified, server FROM events WHERE id BETWEEN $1 AND $2 AND server = $3 ORDER BY id',
        [String(from), String(to), origin]);
      for (const row of r.rows) {
        const id = BigInt(row.id);
        // Ids are handed out at insert and notifications come at commit, so ids from two servers can
        // arrive out of order: only skip what was delivered already (by a catch-up).
        if (!this.seen.has(id)) this.deliver(toEvent(row), id);
      }
    }).catch((err: unknown) => {
      // Not read: the next catch-up starts below this batch, even if later batches are read meanwhile.
      const first = BigInt(String(from));
      if (this.missedFrom === undefined || first < this.missedFrom) this.missedFrom = first;
      // Down: the reconnect's catch-up reads what was missed; another error: a catch-up next, in order.
      if (this.link.failed(err)) return;
      this.logger.error({ err }, 'cannot read boot events another server wrote; reading again from there');
      this.reads = this.reads.then(() => this.catchUp()).catch((e: unknown) => {
        if (!this.link.failed(e)) this.logger.error({ err: e }, 'cannot read boot events another server wrote');
      });
    });
  }

  emit(event: Omit<BootEvent, 'at'> & { at?: string }): void {
    if (!event.mac) return;
    const e: BootEvent = { ...event, at: event.at ?? this.now().toISOString() };
    this.deliver(e);
    this.queue.push(e);
    if (this.queue.length > MAX_QUEUE) {
      const n = this.queue.length - MAX_QUEUE + DROP_CHUNK;
      this.dropped += n;
      this.queue.splice(0, n);
    }
    this.kick();
  }

  /** Events recorded here and not yet in the database. */
  get backlog(): number { return this.queue.length; }

  private kick(): void {
    if (!this.link.up) return;
    // An emit between the loop's last look and this finally found `writing` still set: look again.
    this.writing ??= this.write().finally(() => { this.writing = undefined; if (this.queue.length) this.kick(); });
  }

  private async write(): Promise<void> {
    while (this.queue.length && this.link.up) {
      if (this.queue.length < BATCH && !this.closing) await new Promise((r) => setTimeout(r, GATHER_MS));
      if (!this.link.up) return;
      if (this.dropped) {
        this.logger.error({ dropped: this.dropped }, 'boot events dropped: the state database was unreachable too long');
        this.dropped = 0;
      }
      const batch = this.queue.slice(0, BATCH);
      try {
        await this.link.pool.query({ name: 'rolecast_events_insert', text: INSERT_EVENTS, values: columnsOf(batch, this.link.serverId) });
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
    return this.timelines.timeline(mac);
  }

  last(mac: string): BootEvent | undefined {
    return this.timelines.last(mac);
  }

  subscribe(fn: (e: BootEvent) => void): () => void {
    return this.timelines.subscribe(fn);
  }

  async close(): Promise<void> {
    this.closing = true;
    await this.writing;
    if (this.link.up && this.queue.length) await this.write();
    if (this.queue.length) this.logger.warn({ events: this.queue.length }, 'boot events not written at shutdown (state database unreachable)');
  }
}

function toEvent(row: Row): BootEvent {
  const e = { mac: row.mac, stage: row.stage, at: row.at.toISOString() } as BootEvent;
  if (row.server) e.server = row.server;
  if (row.host !== null) e.host = row.host;
  if (row.detail !== null) e.detail = row.detail;
  if (row.address !== null) e.address = row.address;
  if (typeof row.verified === 'boolean') e.verified = row.verified;
  return e;
}
