/**
 * A keyed record log in one JSON-lines file: one record a line, the latest line of a key wins. The
 * records live in memory; each change is one appended line, written and fdatasync'd before its promise
 * resolves, and changes asked for while a write runs go together in the next one (one write and one sync
 * for all of them). So a change costs O(1) whatever the number of keys; the file is rewritten with one
 * line per key (temp file, fsync, rename, directory fsync) only once it holds `compactAfter` more lines
 * than four per key, which is O(keys) per O(keys) changes.
 *
 * The boot tokens (boots.jsonl) and what each machine was last served (served.jsonl) are kept this way.
 * The server is the only writer; opening the log only reads (the file is opened for appends at the first
 * change), so a CLI that opens the state never creates or moves it under a running server.
 *
 * A compaction that renamed the new file into place but could not open it (EMFILE, say) leaves no handle
 * on the file renamed away: appends to it would land in a deleted file and be lost at the next start,
 * however durable they looked. The next write opens the file first; until one can, every change fails
 * loudly.
 */
import { mkdir, open, readFile, rename, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Logger } from '../../log.js';

export interface KeyedJournalOptions<T> {
  /** A parsed line is a record (others, and torn lines, are skipped: the record before them stands). */
  valid(r: unknown): r is T;
  key(r: T): string;
  /** Keys kept at most; the least recently changed go first (default: no bound). */
  maxKeys?: number;
  /** Lines allowed beyond four per key before the file is rewritten (default 1000). */
  compactAfter?: number;
  /** Records from before this file (an older format), older than every line of the file. */
  before?: Iterable<T>;
  /** After each compaction (the file then holds every record, `before`'s too). */
  onCompacted?(): Promise<void>;
  /** Where a failed compaction is told (the changes themselves fail to their callers). */
  logger?: Logger;
  /** The file's mode when made (default 0o600); a compaction keeps it. */
  mode?: number;
}

export class KeyedJournal<T> {
  private readonly byKey = new Map<string, T>();
  private lines = 0;
  private fh: FileHandle | undefined;
  private reopenDue = true;
  /** The file ends in a torn line (a crash mid-write): the next write ends it first, or its first line would join it. */
  private torn = false;
  private queue: { line: string; resolve(): void; reject(err: unknown): void }[] = [];
  private flushing: Promise<void> | undefined;

  private constructor(private readonly file: string | undefined, private readonly opts: KeyedJournalOptions<T>) {}

  /** Records in memory only (tools and tests that never write). */
  static memory<T>(opts: KeyedJournalOptions<T>): KeyedJournal<T> {
    return new KeyedJournal<T>(undefined, opts);
  }

  static async open<T>(file: string, opts: KeyedJournalOptions<T>): Promise<KeyedJournal<T>> {
    const j = new KeyedJournal<T>(file, opts);
    for (const r of opts.before ?? []) j.keep(r);
    let text = '';
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    j.torn = text.length > 0 && !text.endsWith('\n');
    const lines = text.split('\n');
    let bad = 0;
    lines.forEach((line, i) => {
      if (!line) return;
      j.lines++;
      let r: unknown;
      try {
        r = JSON.parse(line);
      } catch {
        // A torn last line is what a crash mid-write leaves (its promise never resolved): the record
        // before it stands. Anything else unreadable is damage, and said so below.
        if (i < lines.length - 1) bad++;
        return;
      }
      if (opts.valid(r)) j.keep(r);
      else bad++;
    });
    if (bad) opts.logger?.warn({ file, badLines: bad }, 'journal lines that are not records were skipped: the records before them stand');
    return j;
  }

  get(key: string): T | undefined {
    return this.byKey.get(key);
  }

  get size(): number {
    return this.byKey.size;
  }

  /** Every record, least recently changed first. */
  values(): IterableIterator<T> {
    return this.byKey.values();
  }

  /** The record is current at once; the promise resolves once it is on disk. */
  put(r: T): Promise<void> {
    this.keep(r);
    if (!this.file) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ line: `${JSON.stringify(r)}\n`, resolve, reject });
      this.flushing ??= this.flush();
    });
  }

  private keep(r: T): void {
    const k = this.opts.key(r);
    this.byKey.delete(k); // re-insert: Map order is change order, oldest first
    this.byKey.set(k, r);
    const max = this.opts.maxKeys ?? Infinity;
    while (this.byKey.size > max) this.byKey.delete(this.byKey.keys().next().value as string);
  }

  /**
   * Writes batches until the queue is empty, and says so in the same turn it finds it empty: a change
   * made by a caller resumed by the last batch (a token spent right after its issue) starts the next
   * flush. (Cleared in a `.finally()` a few microtasks later, that change waited in the queue, its promise
   * pending, until some other change came: a caller awaiting changes one after another hung.) Nothing in
   * the loop throws (a batch's failure goes to its callers), so the flag cannot be left set.
   */
  private async flush(): Promise<void> {
    await undefined; // this.flushing is set before anything below runs
    for (;;) {
      if (!this.queue.length) {
        this.flushing = undefined;
        return;
      }
      const batch = this.queue;
      this.queue = [];
      try {
        if (this.reopenDue) await this.openFile();
        await this.fh!.write((this.torn ? '\n' : '') + batch.map((b) => b.line).join(''));
        await this.fh!.datasync();
        this.torn = false;
        this.lines += batch.length;
      } catch (err) {
        for (const b of batch) b.reject(err);
        continue;
      }
      // The batch is on disk whatever the compaction does; a compaction that fails leaves the file as it
      // is (appends go on) or, once renamed, makes the next write open the new file.
      if (this.lines > 4 * this.byKey.size + (this.opts.compactAfter ?? 1000)) {
        await this.compact().catch((err: unknown) => this.opts.logger?.error({ err, file: this.file, reopenDue: this.reopenDue },
          this.reopenDue ? 'journal compacted, but cannot open it again: the next change opens it first' : 'journal compaction failed: changes go on being appended to it as it is'));
      }
      for (const b of batch) b.resolve();
    }
  }

  private async openFile(): Promise<void> {
    await mkdir(dirname(this.file!), { recursive: true }); // at the first change: opening only reads
    this.fh = await open(this.file!, 'a', this.opts.mode ?? 0o600);
    this.reopenDue = false;
  }

  private async compact(): Promise<void> {
    const file = this.file!;
    const tmp = `${file}.tmp`;
    const recs = [...this.byKey.values()];
    const fh = await open(tmp, 'w', this.opts.mode ?? 0o600);
    try {
      await fh.write(recs.map((r) => `${JSON.stringify(r)}\n`).join(''));
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
    this.torn = false;
    const old = this.fh;
    this.reopenDue = true;
    this.lines = recs.length;
    try {
      await this.openFile();
    } finally {
      await old?.close().catch(() => undefined);
    }
    const d = await open(dirname(file), 'r');
    await d.sync().catch(() => undefined).finally(() => d.close());
    await this.opts.onCompacted?.();
  }

  async close(): Promise<void> {
    await this.flushing;
    await this.fh?.close();
    this.fh = undefined;
    this.reopenDue = true;
  }
}
