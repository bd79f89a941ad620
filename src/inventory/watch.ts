/**
 * InventoryStore: the snapshot everyone reads. reload() builds a new snapshot and swaps it only when
 * valid; a broken edit keeps the old one serving and logs exactly what is wrong.
 */
import { watch, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../log.js';
import { ProfileError, formatIssue, type ProfileIssue } from '../errors.js';
import { loadInventory } from './index.js';
import { ROLES_DIR } from './load.js';
import type { Inventory } from './types.js';
import { reloadFailed } from '../metrics.js';

export interface ReloadResult {
  ok: boolean;
  changed?: boolean;
  issues?: ProfileIssue[];
}

export class InventoryStore {
  private inv: Inventory;
  private watchers: FSWatcher[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly listeners: Array<(inv: Inventory) => void> = [];
  private reloading: Promise<ReloadResult> | undefined;
  private again = false;
  private last: { at: string; ok: boolean; issues?: string[] } | undefined;

  private constructor(readonly dir: string, private readonly logger: Logger, inv: Inventory, readonly debounceMs: number,
    private readonly load: () => Promise<Inventory>) {
    this.inv = inv;
  }

  /**
   * Loads the first snapshot (or takes `first`, one the caller has just loaded from the same source:
   * `serve` validates before it starts, and loading 10,000 machines twice doubled its start-up); a broken
   * profile set at start-up is an error (nothing to fall back to).
   * `load` builds a snapshot from elsewhere than the directory (the postgres state backend's profiles);
   * such a store is not watched: its source calls reload() when it changes.
   */
  static async open(dir: string, logger: Logger, debounceMs = 200, load: () => Promise<Inventory> = () => loadInventory(dir), first?: Inventory): Promise<InventoryStore> {
    return new InventoryStore(dir, logger, first ?? await load(), debounceMs, load);
  }

  current(): Inventory {
    return this.inv;
  }

  /** The last reload's outcome (the UI's "profiles refused" banner); undefined before the first reload. */
  lastReload(): { at: string; ok: boolean; issues?: string[] } | undefined {
    return this.last;
  }

  onSwap(fn: (inv: Inventory) => void): void {
    this.listeners.push(fn);
  }

  /** Re-load; concurrent calls coalesce so the last edit always gets a load of its own. */
  reload(): Promise<ReloadResult> {
    if (this.reloading) {
      this.again = true;
      return this.reloading;
    }
    this.reloading = this.doReload().then((r) => {
      this.last = { at: new Date().toISOString(), ok: r.ok, ...(r.issues ? { issues: r.issues.map(formatIssue) } : {}) };
      if (!r.ok) reloadFailed();
      return r;
    }).finally(() => {
      this.reloading = undefined;
      if (this.again) { this.again = false; void this.reload(); }
    });
    return this.reloading;
  }

  private async doReload(): Promise<ReloadResult> {
    let next: Inventory;
    try {
      next = await this.load();
    } catch (err) {
      if (!(err instanceof ProfileError)) {
        this.logger.error({ err }, 'profile reload failed; keeping the last good snapshot');
        return { ok: false };
      }
      this.logger.warn({ issues: err.issues.map(formatIssue), version: this.inv.version.slice(0, 12) }, `profiles invalid (${err.issues.length} errors); keeping the last good snapshot`);
      return { ok: false, issues: [...err.issues] };
    }
    if (next.version === this.inv.version) return { ok: true, changed: false };
    const prev = this.inv;
    this.inv = next; // one assignment: readers see the old snapshot or the new one, never a mix
    this.logger.info({ from: prev.version.slice(0, 12), to: next.version.slice(0, 12), machines: next.machines.length }, 'profiles reloaded');
    for (const fn of this.listeners) fn(next);
    return { ok: true, changed: true };
  }

  /** Watch the profiles directory and roles/; editors write temp files and rename, so debounce. */
  watch(): void {
    if (this.watchers.length) return;
    const kick = () => {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => { void this.reload(); }, this.debounceMs);
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
    clearTimeout(this.timer);
    for (const w of this.watchers.splice(0)) w.close();
  }
}
