/**
 * An append-only JSON-lines file that several processes write and each of them follows: `rolecast serve`
 * and the CLI (power, assign --reboot, boot-once) share <data>/events.jsonl and power.jsonl, and a line
 * any of them appends reaches the others' timelines and SSE streams (what LISTEN/NOTIFY does for the
 * PostgreSQL backend).
 *
 * - Appends are one write(2) each on an O_APPEND descriptor: whole lines never interleave.
 * - Following: a directory watch (inotify) plus a 1 s poll read from the last offset to the end; a partial
 *   last line (a write in progress, or torn by a crash) waits until it is complete. This process's own
 *   lines are recognised and skipped (its store has them already).
 * - Compaction (`replace`) writes the new body and a marker line to a temp file and renames it over the
 *   journal, then appends a seal line to the old file and carries over to the new one every line others
 *   appended to the old file before the seal. A writer that finds the path renamed under its descriptor
 *   after a write looks for the seal in the file it wrote to: its lines before the seal were carried
 *   (or are in the body), those after it were not and it appends them again to the new file; no seal
 *   (a rotation, or a compactor that died) means none was carried. Followers finish the old file (up to
 *   its seal), then read the new one after the marker (a file without one is a rotation: all of it is
 *   new). A line seen in the old tail is not delivered again from the new file.
 */
import { watch, type FSWatcher } from 'node:fs';
import { mkdir, open, rename, stat, type FileHandle } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import type { Logger } from '../../log.js';

const MARKER = '{"journal":"compacted"';
/** The compactor's last line in the file it replaced: what others appended after it was not carried over. */
const SEAL = '{"journal":"sealed"';
/** How long a writer that found the journal renamed waits for the compactor's seal (else: a rotation). */
const SEAL_WAIT_MS = 1000;
/** How much of the replaced file's end a writer reads looking for the seal (only late appends follow it). */
const SEAL_SCAN = 1 << 20;
const POLL_MS = 1000;
const WATCH_MS = 50;
/** For this long after a rename, a line equal to one of the last RECENT delivered is a copy (carried, or appended again). */
const CARRY_MS = 30_000;
const RECENT = 4096;

export interface JournalOptions {
  logger: Logger;
  /** Each line of the file at open (`load`), and each line another process appended later (`follow`). */
  onLine(line: string, how: 'load' | 'follow'): void;
  /** Follow other processes' appends (default true). */
  follow?: boolean;
  /** Read the existing lines at open (default true); false starts at the end (tools that only append). */
  load?: boolean;
}

interface Cursor { fh: FileHandle; ino: number; offset: number }

export class SharedJournal {
  private chain: Promise<unknown> = Promise.resolve();
  private queued = false;
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private soon: NodeJS.Timeout | undefined;
  private closed = false;
  /** The last RECENT lines delivered (and when the journal was last renamed): copies after a rename are skipped. */
  private readonly recent = new Set<string>();
  private rotatedAt = 0;

  private constructor(readonly file: string, private out: Cursor, private inp: Cursor, private readonly opts: JournalOptions) {}

  static async open(file: string, opts: JournalOptions): Promise<SharedJournal> {
    await mkdir(dirname(file), { recursive: true });
    const { out, inp } = await openPair(file);
    const j = new SharedJournal(file, out, inp, opts);
    const size = (await inp.fh.stat()).size;
    // A torn last line from a crash: end it, so the next append starts a line of its own.
    if (size > 0) {
      const last = Buffer.alloc(1);
      await inp.fh.read(last, 0, 1, size - 1);
      if (last[0] !== 0x0a) await out.fh.write('\n');
    }
    if (opts.load === false) inp.offset = (await inp.fh.stat()).size;
    else await j.readFrom(inp, 'load');
    if (opts.follow !== false) j.startFollowing();
    return j;
  }

  /** Bytes in the journal (as far as this process has read it). */
  get size(): number { return this.inp.offset; }

  /** Append complete lines; resolves once written. */
  append(text: string): Promise<void> {
    return this.serial(async () => {
      // This batch's lines, counted: needed only when someone else wrote or renamed the file meanwhile (to
      // skip our own lines when reading theirs), so made only then; a batch of events is hundreds of lines.
      let counted: Map<string, number> | undefined;
      const ownLines = () => {
        if (!counted) {
          counted = new Map<string, number>();
          for (const l of text.split('\n')) if (l) counted.set(l, (counted.get(l) ?? 0) + 1);
        }
        return counted;
      };
      const expected = this.inp.ino === this.out.ino ? this.inp.offset + Buffer.byteLength(text) : -1;
      await this.out.fh.write(text);
      let path = await stat(this.file).catch(() => undefined);
      let again = false;
      let lines: Map<string, number> | undefined;
      while (path && path.ino !== this.out.ino) {
        // Renamed under us (another process compacted, or a rotation): the write went to the old file.
        // What its compactor did not carry over (written after its seal) goes again to the new one —
        // and again if that one was compacted away too meanwhile.
        const own = ownLines();
        lines = await this.notCarried(this.out, lines ?? own);
        await this.reopenOut();
        again = true;
        if (!lines.size) break;
        await this.out.fh.write(linesText(lines));
        for (const [l, n] of lines) own.set(l, (own.get(l) ?? 0) + n);
        path = await stat(this.file).catch(() => undefined);
      }
      if (!again && path?.size === expected) {
        this.inp.offset = expected; // nothing from anyone else in between: no need to read our lines back
        return;
      }
      // Not following (a CLI that only appends): others' lines are not ours to read.
      if (this.opts.follow !== false) await this.step(ownLines());
    });
  }

  /** Compaction: the journal becomes `build()`'s lines (built after catching up with the others). */
  replace(build: () => string): Promise<{ before: number; after: number }> {
    return this.serial(async () => {
      await this.step();
      const before = this.inp.offset;
      const tmp = `${this.file}.tmp-${process.pid}`;
      const body = `${build()}${MARKER},"at":"${new Date().toISOString()}"}\n`;
      const fh = await open(tmp, 'w');
      try {
        await fh.write(body);
        // The same owner and mode as the file it replaces: a root CLI compacting must not leave a file
        // the server (running as its own user) can no longer append to.
        const was = await this.inp.fh.stat();
        if (process.getuid?.() === 0) await fh.chown(was.uid, was.gid);
        await fh.chmod(was.mode & 0o777);
        await fh.sync();
      } finally { await fh.close(); }
      await rename(tmp, this.file);
      this.rotatedAt = Date.now();
      const old = this.inp;
      // Sealed (through our append descriptor, still on the old file since step()): a line others append
      // to it after this is not carried, and its writer, finding the seal before it, appends it again.
      if (this.out.ino === old.ino) await this.out.fh.write(`${SEAL},"at":"${new Date().toISOString()}"}\n`);
      await this.reopenOut();
      // Others may append to the new file at once: follow it from the end of our body, not from its end.
      this.inp = await cursor(this.file);
      this.inp.offset = Buffer.byteLength(body);
      // Appended to the old file by others after our last read: carried over (they are in no body).
      const tail = await this.readFrom(old, 'tail');
      await old.fh.close();
      if (tail.length) {
        await this.out.fh.write(tail.map((l) => `${l}\n`).join(''));
        await this.step(new Map(tail.map((l) => [l, 1])));
      } else await this.step();
      return { before, after: this.inp.offset };
    });
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.catch(() => undefined).then(fn);
    this.chain = run;
    return run;
  }

  private startFollowing(): void {
    const name = basename(this.file);
    try {
      // Coalesced: a busy journal (our own appends fire it too) is looked at once per WATCH_MS.
      this.watcher = watch(dirname(this.file), { persistent: false }, (_ev, f) => {
        if (f !== name || this.soon) return;
        this.soon = setTimeout(() => { this.soon = undefined; this.kick(); }, WATCH_MS);
      });
      this.watcher.on('error', () => undefined); // the poll still follows
    } catch (err) {
      this.opts.logger.debug({ err, file: this.file }, 'journal: no directory watch; polling');
    }
    this.timer = setInterval(() => this.kick(), POLL_MS);
    this.timer.unref();
  }

  private kick(): void {
    if (this.queued || this.closed) return;
    this.queued = true;
    void this.serial(async () => {
      this.queued = false;
      if (!this.closed) await this.step();
    }).catch((err: unknown) => this.opts.logger.warn({ err, file: this.file }, 'journal: cannot follow'));
  }

  /**
   * Read what is new: the rest of the current file; if the path now names another file (compacted or
   * rotated), the old one to its end, then the new one from after its marker. `own`: lines this process
   * just wrote, skipped once each.
   */
  private async step(own?: Map<string, number>): Promise<void> {
    const path = await stat(this.file).catch(() => undefined);
    if (!path || path.ino === this.inp.ino) {
      await this.readFrom(this.inp, 'follow', own);
      if (path && path.size < this.inp.offset) {
        this.opts.logger.warn({ file: this.file }, 'journal truncated in place by someone: following from its end');
        this.inp.offset = path.size;
      }
      return;
    }
    this.rotatedAt = Date.now();
    const old = this.inp;
    await this.readFrom(old, 'tail', own);
    this.inp = await cursor(this.file);
    await old.fh.close();
    if (this.out.ino !== this.inp.ino) await this.reopenOut();
    await this.readFrom(this.inp, 'switch', own);
  }

  /**
   * Lines from the cursor's offset to the end of its file, each to onLine unless it is one of `own`, a
   * marker, or (shortly after a rename) a copy of a line just delivered. `tail`: the last read of a file
   * renamed away; `switch`: the first read of the file that replaced it (only lines after its last
   * marker are new). Returns the lines delivered.
   */
  private async readFrom(c: Cursor, how: 'load' | 'follow' | 'tail' | 'switch', own?: Map<string, number>): Promise<string[]> {
    const size = (await c.fh.stat()).size;
    if (size <= c.offset) return [];
    const buf = Buffer.alloc(size - c.offset);
    const { bytesRead } = await c.fh.read(buf, 0, buf.length, c.offset);
    const text = buf.subarray(0, bytesRead).toString('utf8');
    const end = text.lastIndexOf('\n');
    if (end < 0) return [];
    c.offset += Buffer.byteLength(text.slice(0, end + 1));
    let lines = text.slice(0, end).split('\n');
    if (how === 'tail') {
      // Lines after the compactor's seal were not carried: their writers append them to the new file.
      const s = lines.findIndex((l) => l.startsWith(SEAL));
      if (s >= 0) lines = lines.slice(0, s);
    }
    if (how === 'switch') {
      const m = lines.findLastIndex((l) => l.startsWith(MARKER));
      if (m >= 0) lines = lines.slice(m + 1);
    }
    const out: string[] = [];
    const afterRename = Date.now() - this.rotatedAt < CARRY_MS;
    for (const line of lines) {
      if (!line || line.startsWith(MARKER) || line.startsWith(SEAL)) continue;
      const n = own?.get(line);
      if (n) { own!.set(line, n - 1); continue; }
      if (how !== 'load') {
        if (afterRename && this.recent.has(line)) continue;
        this.remember(line);
      }
      out.push(line);
      this.opts.onLine(line, how === 'load' ? 'load' : 'follow');
    }
    return out;
  }

  /**
   * Of `lines` (just appended through `c`, a file since renamed away), those its compactor did not carry
   * over: the ones after its seal. Waits a little for the seal (the compactor writes it right after
   * the rename); none at all means a rotation or a compactor that died: nothing was carried.
   */
  private async notCarried(c: Cursor, lines: Map<string, number>): Promise<Map<string, number>> {
    for (const t0 = Date.now(); ;) {
      const size = (await c.fh.stat()).size;
      const from = Math.max(0, size - SEAL_SCAN);
      const buf = Buffer.alloc(size - from);
      const { bytesRead } = await c.fh.read(buf, 0, buf.length, from);
      const all = buf.subarray(0, bytesRead).toString('utf8').split('\n');
      const at = all.findIndex((l) => l.startsWith(SEAL));
      if (at >= 0) {
        const after = new Map<string, number>();
        for (const l of all.slice(at + 1)) {
          const mine = lines.get(l) ?? 0;
          if (mine > (after.get(l) ?? 0)) after.set(l, (after.get(l) ?? 0) + 1);
        }
        return after;
      }
      if (this.closed || Date.now() - t0 > SEAL_WAIT_MS) return lines;
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  private remember(line: string): void {
    this.recent.add(line);
    if (this.recent.size > RECENT) this.recent.delete(this.recent.values().next().value as string);
  }

  private async reopenOut(): Promise<void> {
    const old = this.out;
    // Read-write (O_APPEND still places every write at the end): a writer reads the seal back from it.
    const fh = await open(this.file, 'a+');
    this.out = { fh, ino: (await fh.stat()).ino, offset: 0 };
    await old.fh.close();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.watcher?.close();
    clearInterval(this.timer);
    clearTimeout(this.soon);
    await this.chain.catch(() => undefined);
    await this.out.fh.close();
    await this.inp.fh.close();
  }
}

function linesText(lines: Map<string, number>): string {
  let t = '';
  for (const [l, n] of lines) for (let i = 0; i < n; i++) t += `${l}\n`;
  return t;
}

async function cursor(file: string): Promise<Cursor> {
  const fh = await open(file, 'r');
  return { fh, ino: (await fh.stat()).ino, offset: 0 };
}

/** An append descriptor and a read descriptor on the same file (retried if it is renamed in between). */
async function openPair(file: string): Promise<{ out: Cursor; inp: Cursor }> {
  for (;;) {
    const a = await open(file, 'a+');
    const r = await open(file, 'r');
    const [sa, sr] = await Promise.all([a.stat(), r.stat()]);
    if (sa.ino === sr.ino) return { out: { fh: a, ino: sa.ino, offset: 0 }, inp: { fh: r, ino: sr.ino, offset: 0 } };
    await a.close();
    await r.close();
  }
}
