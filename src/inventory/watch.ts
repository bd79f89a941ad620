/**
 * InventoryStore: the snapshot everyone reads. reload() builds a new snapshot and swaps it only when
 * valid; a broken edit keeps the old one serving and logs exactly what is wrong. A watched edit is read
 * only once the files have settled, and one that would drop more than `maxDropShare` of the machines is
 * held back until confirmed with reload({ force: true }) (SIGHUP, `rolecast reload --force`): settle.ts.
 */
import { watch, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../log.js';
import { ProfileError, formatIssue, type ProfileIssue } from '../errors.js';
import { loadInventory } from './index.js';
import { ROLES_DIR } from './load.js';
import type { Inventory } from './types.js';
import { reloadFailed } from '../metrics.js';
import { droppedMachines, profileStamp } from './settle.js';
import { LOADER_HASHES_MIN, LOADER_NICE, startOffThreadLoad, WorkerUnavailable, type HashContext } from './offthread.js';

/**
 * A directory's reloads run on a worker thread (offthread.ts); should the thread not start, on this one,
 * said once in the log. With `hashWith`, a snapshot of a new version also gets every machine's files
 * hash worked out on that thread (kept for hashesOf), so nothing renders 10,000 machines on this one.
 */
function offThreadLoader(dir: string, logger: Logger, hashWith: StoreOptions['hashWith'], current: () => Inventory,
  remember: (inv: Inventory, hashes: Promise<(string | null)[]>) => void): () => Promise<Inventory> {
  let warned = false;
  return async () => {
    const load = startOffThreadLoad(dir, undefined, { nice: LOADER_NICE });
    try {
      const inv = await load.inventory;
      if (hashWith && inv.machines.length >= LOADER_HASHES_MIN && inv.version !== current().version) remember(inv, hashWith().then((ctx) => load.hashes(ctx)).finally(() => load.close()));
      else load.close();
      return inv;
    } catch (err) {
      load.close();
      if (!(err instanceof WorkerUnavailable)) throw err;
      if (!warned) { warned = true; logger.warn({ err }, 'profile reloads run on the main thread (the loader thread failed)'); }
      return loadInventory(dir);
    }
  };
}

export interface ReloadResult {
  ok: boolean;
  changed?: boolean;
  issues?: ProfileIssue[];
  /** Not applied: it would drop these machines (more than maxDropShare); confirm with force. */
  held?: { dropped: string[]; machines: number };
  /** Not applied: the files changed while they were being read; the watcher tries again. */
  unsettled?: boolean;
}

export interface ReloadOptions {
  /** Watched edits apply once the files have been unchanged this long (ms). */
  settleMs?: number;
  /** Largest share (0..1) of the machines a reload may drop without confirmation. */
  maxDropShare?: number;
}

export interface StoreOptions extends ReloadOptions {
  /**
   * The render context machines' files are hashed with (src/boot/content.ts): given, a reload of the
   * directory hashes every machine on the loader thread too (hashesOf).
   */
  hashWith?: () => Promise<HashContext>;
}

export interface ReloadStatusRecord {
  at: string;
  ok: boolean;
  issues?: string[];
  held?: { dropped: string[]; machines: number; confirm: string };
}

export class InventoryStore {
  private inv: Inventory;
  private watchers: FSWatcher[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly listeners: Array<(inv: Inventory) => void> = [];
  private readonly preparers: Array<(inv: Inventory) => Promise<void>> = [];
  private readonly hashes = new WeakMap<Inventory, Promise<(string | null)[]>>();
  private reloading: Promise<ReloadResult> | undefined;
  /** A reload asked for while one ran; `stamp` set when only the watcher asked (it may be unneeded then). */
  private again: { stamp?: string } | undefined;
  /**
   * The profile files' stamp taken just before the last load of the directory began (watched stores):
   * the watcher does not load again what that load already read (an edit followed by SIGHUP loaded the
   * same files twice: once for the signal, once more when the watcher saw them settle).
   */
  private loadedStamp: string | undefined;
  private last: ReloadStatusRecord | undefined;
  private forceNext = false;
  private closed = false;
  readonly settleMs: number;
  readonly maxDropShare: number;

  private readonly load: () => Promise<Inventory>;

  private constructor(readonly dir: string, private readonly logger: Logger, inv: Inventory, opts: StoreOptions, load: (() => Promise<Inventory>) | undefined) {
    this.inv = inv;
    this.load = load ?? offThreadLoader(dir, logger, opts.hashWith, () => this.inv, (i, h) => {
      h.catch((err: unknown) => this.logger.warn({ err }, 'machine hashes from the loader thread failed; they are worked out here on first use'));
      this.hashes.set(i, h);
    });
    this.settleMs = opts.settleMs ?? 2000;
    this.maxDropShare = opts.maxDropShare ?? 0.25;
  }

  /**
   * Loads the first snapshot (or takes `first`, one the caller has just loaded from the same source:
   * `serve` validates before it starts, and loading 10,000 machines twice doubled its start-up); a broken
   * profile set at start-up is an error (nothing to fall back to).
   * `load` builds a snapshot from elsewhere than the directory (the postgres state backend's profiles);
   * such a store is not watched: its source calls reload() when it changes. A number as the third
   * argument is the settle time (ms).
   */
  static async open(dir: string, logger: Logger, opts: number | StoreOptions = {}, load?: () => Promise<Inventory>, first?: Inventory): Promise<InventoryStore> {
    // The first load has nothing to keep answering meanwhile: it runs here; reloads of a directory, off-thread.
    const inv = first ?? await (load ?? (() => loadInventory(dir)))();
    return new InventoryStore(dir, logger, inv, typeof opts === 'number' ? { settleMs: opts } : opts, load);
  }

  current(): Inventory {
    return this.inv;
  }

  /** The last reload's outcome (the UI's "profiles refused" banner); undefined before the first reload. */
  lastReload(): ReloadStatusRecord | undefined {
    return this.last;
  }

  onSwap(fn: (inv: Inventory) => void): void {
    this.listeners.push(fn);
  }

  /**
   * Work to finish on a new snapshot before it goes live (the per-snapshot caches the API reads), so the
   * first request after a reload finds them ready; the old snapshot keeps serving meanwhile. A failure
   * is logged and does not stop the swap.
   */
  beforeSwap(fn: (inv: Inventory) => Promise<void>): void {
    this.preparers.push(fn);
  }

  /** Every machine's files hash of a reloaded snapshot, from the loader thread (undefined: none coming). */
  hashesOf(inv: Inventory): Promise<(string | null)[]> | undefined {
    return this.hashes.get(inv);
  }

  /**
   * Re-load now (an operator's SIGHUP, the API, our own edits); `force` also applies a reload that the
   * drop guard would hold back. Concurrent calls coalesce so the last edit always gets a load of its own.
   */
  reload(opts: { force?: boolean; stamp?: string } = {}): Promise<ReloadResult> {
    if (opts.force) this.forceNext = true;
    if (this.reloading) {
      // Only watcher requests (with their stamp) may be skipped later; anyone else's gets a load.
      this.again = opts.stamp !== undefined && (!this.again || this.again.stamp !== undefined) ? { stamp: opts.stamp } : {};
      return this.reloading;
    }
    const force = this.forceNext;
    this.forceNext = false;
    this.reloading = this.doReload(force, opts.stamp).then((r) => {
      if (!r.unsettled) this.record(r);
      if (!r.ok && !r.unsettled) reloadFailed();
      return r;
    }).finally(() => {
      this.reloading = undefined;
      const again = this.again;
      this.again = undefined;
      if (again && !(again.stamp !== undefined && again.stamp === this.loadedStamp && !this.forceNext)) void this.reload();
    });
    return this.reloading;
  }

  private record(r: ReloadResult): void {
    this.last = {
      at: new Date().toISOString(), ok: r.ok && !r.held,
      ...(r.issues ? { issues: r.issues.map(formatIssue) } : {}),
      ...(r.held ? { held: { ...r.held, confirm: 'send SIGHUP or run `rolecast reload --force` to apply it' } } : {}),
    };
  }

  private async doReload(force: boolean, stamp: string | undefined): Promise<ReloadResult> {
    let next: Inventory;
    // Taken before reading, so an edit made during the load differs from it and is loaded in its turn.
    const before = this.watchers.length ? stamp ?? await profileStamp(this.dir) : undefined;
    try {
      next = await this.load();
      // A watched reload: the files must not have changed between the settled look and the end of the load.
      if (stamp !== undefined && await profileStamp(this.dir) !== stamp) return { ok: false, unsettled: true };
      this.loadedStamp = before;
    } catch (err) {
      if (stamp !== undefined && await profileStamp(this.dir) !== stamp) return { ok: false, unsettled: true };
      // The same broken files need not be read (and reported) twice; a failure of another kind is tried again.
      this.loadedStamp = err instanceof ProfileError ? before : undefined;
      if (!(err instanceof ProfileError)) {
        this.logger.error({ err }, 'profile reload failed; keeping the last good snapshot');
        return { ok: false };
      }
      this.logger.warn({ issues: err.issues.map(formatIssue), version: this.inv.version.slice(0, 12) }, `profiles invalid (${err.issues.length} errors); keeping the last good snapshot`);
      return { ok: false, issues: [...err.issues] };
    }
    if (next.version === this.inv.version) return { ok: true, changed: false };
    const drop = droppedMachines(this.inv, next);
    if (!force && drop.share > this.maxDropShare) {
      this.logger.warn({ dropped: drop.dropped, machines: this.inv.machines.length, version: next.version.slice(0, 12) },
        `profile reload held back: it would drop ${drop.dropped.length} of ${this.inv.machines.length} machines (more than ${Math.round(this.maxDropShare * 100)}%); send SIGHUP or run \`rolecast reload --force\` to apply it`);
      return { ok: true, changed: false, held: { dropped: drop.dropped, machines: this.inv.machines.length } };
    }
    for (const fn of this.preparers) {
      await fn(next).catch((err: unknown) => this.logger.warn({ err, version: next.version.slice(0, 12) }, 'preparing the new snapshot failed; swapping it in anyway'));
    }
    const prev = this.inv;
    this.inv = next; // one assignment: readers see the old snapshot or the new one, never a mix
    this.logger.info({ from: prev.version.slice(0, 12), to: next.version.slice(0, 12), machines: next.machines.length }, 'profiles reloaded');
    for (const fn of this.listeners) fn(next);
    return { ok: true, changed: true };
  }

  /**
   * Watch the profiles directory and roles/. After an event, the files must look the same (profileStamp)
   * at two looks settleMs apart, and stay so while they are read, before the reload counts.
   */
  watch(): void {
    if (this.watchers.length) return;
    let seen: string | undefined;
    const check = async () => {
      const now = await profileStamp(this.dir);
      if (this.closed) return;
      if (now !== seen) { seen = now; this.timer = setTimeout(() => { void check(); }, this.settleMs); return; }
      seen = undefined;
      // Settled on exactly the files the last load read (a SIGHUP or an API reload got there first).
      if (now === this.loadedStamp) return;
      const r = await this.reload({ stamp: now });
      if (r.unsettled && !this.closed) kick();
    };
    const kick = () => {
      clearTimeout(this.timer);
      seen = undefined;
      this.timer = setTimeout(() => { void check(); }, Math.min(this.settleMs, 200));
    };
    for (const d of [this.dir, join(this.dir, ROLES_DIR)]) {
      try {
        const w = watch(d, kick);
        w.on('error', (err) => this.logger.warn({ err, dir: d }, 'profile watch error'));
        this.watchers.push(w);
      } catch (err) {
        this.logger.warn({ err, dir: d }, 'cannot watch profiles directory; use SIGHUP to reload');
      }
    }
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    for (const w of this.watchers.splice(0)) w.close();
  }
}
