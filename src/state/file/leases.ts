/**
 * Leases on disk: an append-only journal (<data>/leases.jsonl), one JSON record per change. A grant
 * is written and fdatasync'd before the ACK leaves (group commit: concurrent grants share one sync),
 * so a crash or kill -9 at any moment loses no ACKed lease. Compaction rewrites the live set to a
 * temp file, syncs it, renames it over the journal and syncs the directory. A corrupt journal is kept
 * aside (leases.jsonl.corrupt-N), what parses is trusted, and the log says so.
 */
import { open, readFile, rename, mkdir, readdir, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../../log.js';
import type { LeaseRecord, LeaseState } from '../../leases.js';
import type { LeaseStore } from '../types.js';
import { ipToInt } from '../../inventory/ip.js';
import { LeaseIndex } from '../lease-index.js';

export type { LeaseRecord, LeaseState };

/**
 * A record the store may apply. Every field is checked, not just typed: a record with an unparsable date
 * (or address, or MAC) applied over a good one would replace that lease with one that is never live,
 * and free its address for another machine (issue 16).
 */
function valid(r: unknown): r is LeaseRecord {
  const x = r as LeaseRecord;
  return typeof x === 'object' && x !== null && typeof x.mac === 'string' && /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/.test(x.mac) &&
    typeof x.ip === 'string' && ipToInt(x.ip) !== undefined &&
    typeof x.expiresAt === 'string' && Number.isFinite(Date.parse(x.expiresAt)) &&
    ['offered', 'bound', 'declined', 'released', 'expired'].includes(x.state);
}

/** Longest a reserved renewal's new expiry (its grant is on disk already) or a reserved offer waits in memory before it is written. */
export const RENEWAL_WRITE_MS = 1000;

export class FileLeaseStore implements LeaseStore {
  private readonly index: LeaseIndex;
  /** Where the next pool scan starts, per network (allocation hint; not persisted). */
  private readonly hints = new Map<string, number>();
  private fh!: FileHandle;
  private lines = 0;
  private pending: LeaseRecord[] = [];
  /**
   * Reserved renewals and offers not yet written, the latest per MAC: a machine renewing many times between
   * two writes needs only its last expiry on disk. A change of any other kind for the MAC drops its entry
   * here (that record is newer), so the file's order stays the order of the changes.
   */
  private readonly renewals = new Map<string, LeaseRecord>();
  /** Writes the renewals RENEWAL_WRITE_MS after the first of them (sooner with any record that must sync). */
  private renewalTimer: NodeJS.Timeout | undefined;
  /**
   * The renewal timer fired (or the store closes): the writer writes the renewals even with no record that
   * must sync. Otherwise renewals only ride along with such a record: under steady renewals, a writer that
   * looped while any renewal was waiting never stopped, and wrote and fdatasync'd back to back (813 syncs
   * for 40,000 exchanges of 10 machines in scripts/bench-dhcp-path.mjs, instead of one a second).
   */
  private renewalsDue = false;
  /** MAC → address of its bound lease as last fdatasync'd: a reserved renewal of it need not wait for a sync. */
  private readonly synced = new Map<string, string>();
  private flushing: Promise<void> | undefined;
  /**
   * A compaction renamed the new journal into place but could not open it (descriptors exhausted, say):
   * the old descriptor is closed (appends to it would go to the renamed-away file), so the next write
   * opens the journal first. Until one succeeds every grant fails loudly; none is acknowledged unwritten.
   */
  private reopenDue = false;
  private waiters: Array<{ resolve(): void; reject(e: unknown): void }> = [];

  private constructor(private readonly dir: string, private readonly logger: Logger, now: () => number, private readonly slack: number) {
    this.index = new LeaseIndex(now);
  }

  /**
   * `compactSlack`: the journal is compacted once it holds this many lines more than 4 per live lease. A
   * few machines renewing flat out would otherwise rewrite and sync the whole file several times a second.
   */
  static async open(dataDir: string, logger: Logger, now: () => number = Date.now, opts: { compactSlack?: number } = {}): Promise<FileLeaseStore> {
    const s = new FileLeaseStore(dataDir, logger, now, opts.compactSlack ?? 20_000);
    await mkdir(dataDir, { recursive: true });
    await s.load();
    return s;
  }

  get file(): string {
    return join(this.dir, 'leases.jsonl');
  }

  private async load(): Promise<void> {
    let text = '';
    try {
      text = await readFile(this.file, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // Something that is not a file where the journal belongs (a directory, say) holds no lease: move it
      // aside and start, instead of refusing to start at all.
      if (code === 'EISDIR') await this.setAside('the lease journal path is a directory', {});
      else if (code !== 'ENOENT') throw err;
    }
    let bad = 0;
    const lines = text.split('\n');
    lines.forEach((line, i) => {
      if (!line.trim()) return;
      try {
        const r: unknown = JSON.parse(line);
        if (valid(r)) this.apply(r); else bad++;
      } catch {
        // An unterminated last line is what a crash mid-append leaves: its sync never finished, so no
        // ACK went out for it. Dropping it loses nothing; anything else unreadable is corruption.
        if (i === lines.length - 1) this.logger.warn({ file: this.file }, 'dropped a torn last lease record (crash during write)');
        else bad++;
      }
    });
    if (bad > 0) await this.setAside('lease journal had unreadable lines: kept the bad file aside and started from the leases that parsed', { badLines: bad });
    await this.openJournal();
    await this.compact(); // start from a clean journal (and a sync'd one after any repair)
  }

  private async openJournal(): Promise<void> {
    this.fh = await open(this.file, 'a');
    this.reopenDue = false;
  }

  private async setAside(msg: string, fields: Record<string, unknown>): Promise<void> {
    const names = await readdir(this.dir);
    const n = names.filter((f) => f.startsWith('leases.jsonl.corrupt-')).length + 1;
    const aside = `${this.file}.corrupt-${n}`;
    await rename(this.file, aside);
    this.logger.error({ file: this.file, keptAs: aside, ...fields, leases: this.index.size }, msg);
  }

  private apply(r: LeaseRecord): void {
    this.index.apply(r);
  }

  poolHint(network: string): number | undefined {
    return this.hints.get(network);
  }

  canAllocate(): boolean {
    return true; // one process owns this file: nothing can be unreachable
  }

  /**
   * Store one change once it is on disk. A grant of an address another MAC holds live is refused: in
   * this process the handler looked a moment ago, but the check is the store's, as it must be for a
   * shared store. A pool grant moves the network's scan hint past the address.
   */
  async commit(r: LeaseRecord, opts: { network?: string; reserved?: boolean } = {}): Promise<boolean> {
    if (r.state === 'offered' || r.state === 'bound') {
      const h = this.holder(r.ip);
      if (h && h.mac !== r.mac) return false;
      const n = opts.network !== undefined ? ipToInt(r.ip) : undefined;
      if (n !== undefined) this.hints.set(opts.network!, n + 1);
    }
    if (opts.reserved && (r.state === 'offered' || this.renewsSynced(r))) {
      // RFC 2131 §4.3.2: a renewal of the lease already granted. Its address is the machine's reservation
      // (no other MAC can get it) and the bound lease is on disk: a crash now loses only the later expiry,
      // never the grant, so the ACK need not wait for this record's sync (it follows with the next batch).
      // An offer of the machine's own reservation is no promise either (the PostgreSQL store answers it
      // at once too): a crash that loses it loses nothing another MAC could take. Its ACK, which follows
      // at once, drops it from here and waits for its own sync, so a boot's offer is mostly never written.
      // In a boot storm a slow fdatasync (385-630 ms, the disk shared with other writers) held every
      // offer waiting on it (bench:storm captures, CHANGELOG).
      this.apply(r);
      this.renewals.set(r.mac, r);
      // Written a moment later with the renewals that follow (or with the next record that must sync), not one
      // write and fdatasync per renewal: machines renewing often (a DHCP load test, PXE ROM then iPXE then
      // the initramfs) cost a sync a renewal, on the DHCP thread's thread pool, for an expiry a crash may lose anyway.
      this.renewalTimer ??= setTimeout(() => {
        this.renewalTimer = undefined;
        this.renewalsDue = true;
        if (this.renewals.size) this.flushing ??= this.flush();
      }, RENEWAL_WRITE_MS);
      return true;
    }
    await this.record(r);
    return true;
  }

  private renewsSynced(r: LeaseRecord): boolean {
    const cur = this.index.lastOf(r.mac);
    return r.state === 'bound' && cur?.state === 'bound' && cur.ip === r.ip && cur.host === r.host && this.synced.get(r.mac) === r.ip;
  }

  /** Record a change; resolves once it is on disk (fdatasync). */
  private async record(r: LeaseRecord): Promise<void> {
    this.apply(r);
    this.renewals.delete(r.mac);
    this.pending.push(r);
    const done = new Promise<void>((resolve, reject) => this.waiters.push({ resolve, reject }));
    this.flushing ??= this.flush();
    return done;
  }

  private noteSynced(recs: Iterable<LeaseRecord>): void {
    for (const r of recs) if (r.state === 'bound') this.synced.set(r.mac, r.ip); else this.synced.delete(r.mac);
  }

  /** The only writer: appends, syncs and compacts one at a time, so nothing races the file handle. */
  private async flush(): Promise<void> {
    for (;;) {
      while (this.pending.length || (this.renewalsDue && this.renewals.size)) {
        const batch = [...this.pending.splice(0), ...this.renewals.values()];
        this.renewals.clear();
        this.renewalsDue = false;
        const waiters = this.waiters.splice(0);
        try {
          if (this.reopenDue) await this.openJournal();
          await this.fh.write(batch.map((r) => `${JSON.stringify(r)}\n`).join(''));
          await this.fh.datasync();
          this.lines += batch.length;
          this.noteSynced(batch);
          waiters.forEach((w) => w.resolve());
        } catch (err) {
          if (!waiters.length) this.logger.error({ err, file: this.file }, 'cannot write lease renewals (the grants they renew are on disk)');
          waiters.forEach((w) => w.reject(err));
        }
      }
      if (this.lines <= 4 * this.index.size + this.slack) break;
      try {
        await this.compact();
      } catch (err) {
        this.logger.error({ err, file: this.file }, 'lease journal compaction failed; still appending');
        break;
      }
    }
    this.flushing = undefined;
  }

  private async compact(): Promise<void> {
    const tmp = `${this.file}.tmp`;
    const out = await open(tmp, 'w');
    const recs = [...this.index.records()].filter((r) => r.state !== 'expired');
    try {
      await out.write(recs.map((r) => `${JSON.stringify(r)}\n`).join(''));
      await out.sync();
    } finally {
      await out.close(); // a failed write or sync (disk full) left it open until the collector closed it
    }
    // The old descriptor is closed after the rename: a rename that fails leaves the journal open for
    // appends (flush says "still appending"), not a closed handle every later grant fails on. Once renamed
    // away it is closed whatever comes next (appends to it would go to no file); if the new journal cannot
    // be opened now, the next write opens it (reopenDue).
    await rename(tmp, this.file);
    const old = this.fh;
    this.reopenDue = true;
    try { await this.openJournal(); } finally { await old.close(); }
    const d = await open(this.dir, 'r');
    await d.sync().catch(() => undefined).finally(() => d.close());
    this.lines = recs.length;
    this.synced.clear();
    this.noteSynced(recs);
  }

  byMacLive(mac: string): LeaseRecord | undefined {
    return this.index.byMacLive(mac);
  }

  holder(ip: string): LeaseRecord | undefined {
    return this.index.holder(ip);
  }

  lastOf(mac: string): LeaseRecord | undefined {
    return this.index.lastOf(mac);
  }

  addressOf(mac: string): string | undefined {
    return this.index.addressOf(mac);
  }

  list(): LeaseRecord[] {
    return this.index.list();
  }

  async close(): Promise<void> {
    clearTimeout(this.renewalTimer);
    this.renewalTimer = undefined;
    await this.flushing;
    if (this.renewals.size) {
      this.renewalsDue = true;
      await (this.flushing ??= this.flush());
    }
    await this.fh.close();
  }
}
