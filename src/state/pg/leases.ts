/**
 * Leases in the site's shared table (Kea-style): unique (network, address) and (network, MAC), each
 * change decided inside PostgreSQL (rolecast_lease_commit, migrations.ts) so two servers answering the
 * same DISCOVER can never hand one address to two MACs. Reads come from a cache that every server
 * keeps current from the others' notifications. Changes are batched: all grants waiting while one
 * transaction runs go in the next one (one WAL flush for many ACKs, as the file store's group commit).
 *
 * Database unreachable: new pool grants are refused (canAllocate() false: no split brain); a reserved
 * machine's grant and releases/declines go to the cache and a queue written on recovery, so reserved
 * machines keep booting from the last snapshot.
 */
import type { Logger } from '../../log.js';
import type { LeaseRecord, LeaseStore } from '../types.js';
import type { PgLink } from './link.js';
import { ipToInt } from '../../inventory/ip.js';
import { LeaseIndex } from '../lease-index.js';
import { fromPayload, isGrant, supersede, toPayload, type Change, type Waiter } from './lease-batch.js';



/** Told of the cache's changes (PgLeaseStore.watch). */
export interface LeaseWatcher {
  change(r: LeaseRecord): void;
  /** The cache was reloaded: this is all of it now. */
  reset(all: LeaseRecord[]): void;
}

const LANES = 3;
/**
 * Changes nobody waits for (reserved offers and renewals, answered at once) gather this long, up to
 * MAX_BATCH of them, before a batch is sent: one transaction then carries hundreds of them instead of
 * a few, and renewals of one MAC gathered together are written once (supersede, lease-batch.ts).
 * PostgreSQL's cost per transaction — statement, locks, commit, the WAL writer woken to flush it, the
 * notification read by every listener — is many times its cost per change (scripts/bench-pg-sql.ts:
 * ~140 µs per statement against ~22 µs per renewal; at 1000 exchanges/s with 10 ms, ~100 lease
 * transactions a second cost PostgreSQL more than the changes). 100 ms is within what such a change
 * risks already: it commits without waiting for its WAL flush (wal_writer_delay, 200 ms by default),
 * and the reply left before it. A change someone waits for sends the batch at once, with whatever
 * gathered.
 */
const GATHER_MS = 100;
/**
 * Changes per transaction, at most. Each takes two advisory locks (its address and its MAC), and
 * PostgreSQL's lock table is shared and bounded (max_locks_per_transaction x max_connections, 6,400 by
 * default): LANES batches of 500 hold 3,000. Without a cap a burst gathered while the lanes were busy,
 * or a long outage's queue, went as one batch and could exhaust it ("out of shared memory").
 */
const MAX_BATCH = 500;

export class PgLeaseStore implements LeaseStore {
  private readonly index: LeaseIndex;
  private readonly hints = new Map<string, number>();
  /** The network of each MAC's current row: a change given without one (a release) belongs there. */
  private readonly netOf = new Map<string, string>();
  private pending: Waiter[] = [];
  /** Written while the database was unreachable; sent first once it is back. */
  private queued: Change[] = [];
  private readonly lanes = new Set<Promise<void>>();
  /**
   * Grants on their way to the database, by address: handlers that look while a grant is in flight see
   * the address taken (concurrent DISCOVERs would otherwise all pick the same free address and all but
   * one be refused), as the file store's cache shows a grant before its fsync.
   */
  private readonly inflight = new Map<string, LeaseRecord>();
  /** MACs whose change is in a transaction now. */
  private readonly busy = new Set<string>();
  /** Pending changes somebody waits for (a pool grant, a first bound lease, a release): send now. */
  private waited = 0;
  private gather: NodeJS.Timeout | undefined;
  /** The gathering time is over (or the store is closing): send what is pending. */
  private due = false;
  private closing = false;
  private watcher: LeaseWatcher | undefined;
  private reloading = false;

  private constructor(private readonly link: PgLink, private readonly logger: Logger, now: () => number) {
    this.index = new LeaseIndex(now);
  }

  static async open(link: PgLink, logger: Logger, now: () => number = Date.now): Promise<PgLeaseStore> {
    const s = new PgLeaseStore(link, logger, now);
    if (link.up) await s.reload(); // else (a server started degraded) the reconnect loads it
    link.on('rolecast_leases', (p) => { for (const [rec, net] of fromPayload(p)) s.apply(rec, net); });
    link.onReconnect(() => s.reload());
    link.onUp(() => s.kick());
    return s;
  }

  /** The whole table into the cache (start, and after a reconnect: notifications may have been missed). */
  private async reload(): Promise<void> {
    const r = await this.link.pool.query<{ network: string; mac: string; ip: string; state: LeaseRecord['state']; expires_at: Date; host: string | null }>(
      'SELECT network, mac, ip, state, expires_at, host FROM leases ORDER BY updated_at');
    this.index.clear();
    this.reloading = true;
    try {
      for (const row of r.rows) this.apply({ mac: row.mac, ip: row.ip, state: row.state, expiresAt: row.expires_at.toISOString(), ...(row.host ? { host: row.host } : {}) }, row.network);
      for (const q of this.queued) this.apply(q.rec, q.network);
    } finally {
      this.reloading = false;
    }
    this.watcher?.reset(this.index.list());
  }

  /**
   * Every change the cache takes from now on (this server's, another's, one queued during an outage),
   * and the whole cache after a reload: the DHCP thread keeps the main thread's mirror with it.
   */
  watch(w: LeaseWatcher): void {
    this.watcher = w;
  }

  /** Same bookkeeping as the file store: a MAC has one current lease, an address one holder. */
  private apply(r: LeaseRecord | undefined, network?: string): void {
    if (!r) return;
    if (network !== undefined) this.netOf.set(r.mac, network);
    this.index.apply(r);
    if (!this.reloading) this.watcher?.change(r);
  }

  addressOf(mac: string): string | undefined {
    return this.index.addressOf(mac);
  }

  list(): LeaseRecord[] {
    return this.index.list();
  }

  byMacLive(mac: string): LeaseRecord | undefined {
    return this.index.byMacLive(mac);
  }

  /** A grant in a transaction right now holds its address too: no second server may be offered it meanwhile. */
  holder(ip: string): LeaseRecord | undefined {
    return this.index.holder(ip, this.inflight.get(ip) ?? this.index.at(ip));
  }

  lastOf(mac: string): LeaseRecord | undefined {
    return this.index.lastOf(mac);
  }

  poolHint(network: string): number | undefined {
    return this.hints.get(network);
  }

  canAllocate(): boolean {
    return this.link.up;
  }

  commit(rec: LeaseRecord, opts: { network?: string; reserved?: boolean } = {}): Promise<boolean> {
    const change: Change = { rec, network: opts.network ?? this.netOf.get(rec.mac) ?? '', reserved: opts.reserved ?? false };
    if (!this.link.up) return Promise.resolve(this.queueWhileDown(change));
    // An offer of the address this MAC holds bound: the database would store nothing (a live bound
    // lease is never turned back into an offer), so it is not asked.
    const held = this.index.byMacLive(rec.mac);
    if (rec.state === 'offered' && held?.state === 'bound' && held.ip === rec.ip) return Promise.resolve(true);
    if (isGrant(rec)) {
      const other = this.inflight.get(rec.ip);
      if (other && other.mac !== rec.mac) return Promise.resolve(false);
      this.inflight.set(rec.ip, rec);
      this.moveHint(change);
    }
    // Answered at once, the row following in the next batch, for the machine's own reservation (no
    // other MAC may hold that address: the inventory says so on every server): an offer, which is no
    // promise; and the renewal of a bound lease the table already holds (the grant is durable, only
    // the later expiry follows), as the file store does. A first bound lease waits for the database.
    const renewal = rec.state === 'bound' && held?.state === 'bound' && held.ip === rec.ip;
    change.answered = change.reserved && (rec.state === 'offered' || renewal);
    const stored = new Promise<boolean>((resolve) => {
      this.pending.push({ change, resolve });
      if (!change.answered) this.waited++;
      this.kick();
    }).finally(() => { if (this.inflight.get(rec.ip) === rec) this.inflight.delete(rec.ip); });
    if (change.answered) {
      void stored.then((ok) => { if (!ok) this.logger.warn({ mac: rec.mac, ip: rec.ip }, 'reserved address held by another MAC in the shared table: its REQUEST will be refused'); });
      return Promise.resolve(true);
    }
    return stored;
  }

  /** Down: a reserved grant or a release/decline is kept and written later; a pool grant is refused. */
  private queueWhileDown(c: Change): boolean {
    if (isGrant(c.rec) && !c.reserved) return false;
    this.apply(c.rec, c.network);
    this.queued.push(c);
    return true;
  }

  /**
   * Up to LANES transactions in flight, each carrying everything that waited for it: PostgreSQL flushes
   * the WAL of concurrent commits together, so a second lane rides on the first one's fsync. A MAC is in
   * one transaction at a time (its changes stay in order); changes queued during an outage go first, alone.
   */
  private kick(): void {
    while (this.link.up && this.lanes.size < LANES && (this.queued.length || this.pending.length)) {
      if (this.queued.length && this.lanes.size > 0) return;
      if (!this.queued.length && !this.waited && !this.due && !this.closing && this.pending.length < MAX_BATCH) {
        this.gather ??= setTimeout(() => {
          this.gather = undefined;
          this.due = true;
          try { this.kick(); } finally { this.due = false; }
        }, GATHER_MS);
        return;
      }
      // Queued changes first, MAX_BATCH at a time; what is pending joins the last of them (a MAC's later
      // changes never overtake its queued ones: pending ones go only once the queue is empty).
      const queued = this.queued.splice(0, MAX_BATCH);
      const batch: Waiter[] = [];
      const later: Waiter[] = [];
      let room = this.queued.length ? 0 : MAX_BATCH - queued.length;
      // Once the batch is full everything else waits, so a MAC's changes stay in order.
      for (const w of this.pending) {
        if (room > 0 && !this.busy.has(w.change.rec.mac)) { batch.push(w); room--; } else later.push(w);
      }
      this.pending = later;
      this.waited = later.reduce((n, w) => n + (w.change.answered ? 0 : 1), 0);
      if (!queued.length && !batch.length) return;
      const macs = [...queued.map((c) => c.rec.mac), ...batch.map((w) => w.change.rec.mac)];
      for (const m of macs) this.busy.add(m);
      const lane: Promise<void> = this.send(queued, batch).finally(() => {
        for (const m of macs) this.busy.delete(m);
        this.lanes.delete(lane);
        this.kick();
      });
      this.lanes.add(lane);
    }
  }

  private async send(queued: Change[], all: Waiter[]): Promise<void> {
    const { batch, superseded } = supersede(all);
    const changes = [...queued, ...batch.map((w) => w.change)];
    // true: stored; false: refused; null: an offer of a lease the MAC already holds bound (nothing stored).
    let results: Array<boolean | null>;
    try {
      // A batch of offers only commits without waiting for its WAL flush: the decision (no other MAC
      // holds the address) is made and visible at once, and an offer is no promise — lost in a database
      // crash, its client's REQUEST is refused and it starts over. A bound lease (the ACK), a release
      // or a decline waits for the flush. Notifying commits are serialised in PostgreSQL, so every
      // flush not waited for here shortens every other server's wait too.
      // Changes answered already (a reserved machine's offer or renewal: no other MAC may hold that
      // address) need no flush either: their reply left before this transaction began, so waiting
      // for the WAL here protects nothing a client was told; a database crash within the WAL writer's
      // delay loses only a later expiry of a lease the table holds, or an offer.
      const durable = queued.length > 0 || changes.some((c) => c.rec.state !== 'offered' && !c.answered);
      // A named (prepared) statement: parsed and planned once per pooled connection.
      const r = await this.link.pool.query<{ r: Array<boolean | null> }>({
        name: 'rolecast_lease_commit',
        text: "SELECT rolecast_lease_commit($1::jsonb, $2) AS r, set_config('synchronous_commit', $3, true)",
        values: [JSON.stringify(changes.map(toPayload)), this.link.serverId, durable ? 'on' : 'off'],
      });
      results = r.rows[0]?.r ?? [];
    } catch (err) {
      this.queued.unshift(...queued);
      const gone = this.link.failed(err);
      this.logger.error({ err, changes: changes.length }, gone ? 'lease commit: state database unreachable' : 'lease commit failed');
      // Not stored: a reserved grant may still go out (queued), a pool grant is refused.
      for (const w of batch) w.resolve(gone ? this.queueWhileDown(w.change) : false);
      for (const [w, by] of superseded) void by.then(w.resolve);
      return;
    }
    changes.forEach((c, i) => { if (results[i]) this.stored(c); });
    const lost = queued.filter((_, i) => results[i] === false).length;
    if (lost) this.logger.warn({ changes: lost }, 'lease changes queued during the outage were refused by the database (another server changed those leases meanwhile)');
    // Only a grant can be refused; a release or decline that found nothing of ours to change is done.
    batch.forEach((w, i) => {
      const r = results[queued.length + i];
      w.resolve(r === true || r === null || !isGrant(w.change.rec));
    });
    for (const [w, by] of superseded) void by.then(w.resolve);
  }

  /** A change the database took: into the cache. */
  private stored(c: Change): void {
    this.apply(c.rec, c.network);
  }

  /** A pool grant moves the network's scan hint past its address (at once: the next scan skips it). */
  private moveHint(c: Change): void {
    if (c.reserved || !c.network) return;
    const n = ipToInt(c.rec.ip);
    if (n !== undefined) this.hints.set(c.network, n + 1);
  }

  async close(): Promise<void> {
    // What gathered is sent, not dropped: renewals answered at once are in it.
    this.closing = true;
    clearTimeout(this.gather);
    this.gather = undefined;
    this.kick();
    while (this.lanes.size) await Promise.all([...this.lanes]);
    for (const w of this.pending.splice(0)) w.resolve(false);
  }
}
