/**
 * Profile edits on the profiles directory. Every edit (CLI, API, boot-once clearing, adoption) runs
 * one at a time: in this process behind a queue, across processes behind a lock file
 * (<profiles>/.rolecast-edit.lock, O_EXCL, holding the owner's PID; a lock whose PID is gone is stale
 * and taken over). Under the lock the file is read, checked against the hash the caller based its edit
 * on (compare-and-swap), edited, validated as a whole profile set, and replaced atomically. No edit is
 * lost, and a conflicting one is refused with E_CONFLICT instead of overwriting.
 */
import { createHash } from 'node:crypto';
import { open, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { RolecastError } from '../../errors.js';
import { writeAtomic } from '../../fsutil.js';
import { parseSources, readSources } from '../../inventory/load.js';
import type { EditOptions, ProfileEditor } from '../types.js';

export function contentHash(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

const LOCK = '.rolecast-edit.lock';
const queues = new Map<string, Promise<unknown>>();

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function withDirLock<T>(dir: string, fn: () => Promise<T>, timeoutMs = 10_000): Promise<T> {
  const file = join(dir, LOCK);
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      const fh = await open(file, 'wx', 0o644);
      await fh.write(`${process.pid}\n`);
      await fh.close();
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number((await readFile(file, 'utf8').catch(() => '')).trim());
      if (Number.isInteger(pid) && pid > 0 && !alive(pid)) { await rm(file, { force: true }); continue; }
      if (Date.now() > until) throw new RolecastError('E_LOCKED', `${file} is held by PID ${pid || '?'}: another edit is running; retry, or remove the file if no rolecast runs`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  try {
    return await fn();
  } finally {
    await rm(file, { force: true });
  }
}

export class FileProfileEditor implements ProfileEditor {
  constructor(readonly dir: string) {}

  async read(file: string): Promise<{ text: string; hash: string }> {
    let text: string;
    try {
      text = await readFile(join(this.dir, file), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new RolecastError('E_NOT_FOUND', `${this.dir} has no ${file}`);
      throw err;
    }
    return { text, hash: contentHash(text) };
  }

  edit(file: string, fn: (text: string) => string, opts: EditOptions = {}): Promise<{ hash: string }> {
    const prev = queues.get(this.dir) ?? Promise.resolve();
    const run = prev.catch(() => undefined).then(() => withDirLock(this.dir, () => this.apply(file, fn, opts)));
    queues.set(this.dir, run);
    void run.finally(() => { if (queues.get(this.dir) === run) queues.delete(this.dir); }).catch(() => undefined);
    return run;
  }

  private async apply(file: string, fn: (text: string) => string, opts: EditOptions): Promise<{ hash: string }> {
    const sources = await readSources(this.dir);
    const src = sources.find((s) => s.name === file);
    if (!src) throw new RolecastError('E_NOT_FOUND', `${this.dir} has no ${file}`);
    const before = contentHash(src.text);
    if (opts.expectHash !== undefined && opts.expectHash !== before) {
      throw new RolecastError('E_CONFLICT', `${file} changed since this edit was prepared (another edit came first): read it again and retry`);
    }
    const edited = fn(src.text);
    if (edited === src.text) return { hash: before };
    // The whole profile set as it would be after the edit; throws ProfileError, nothing written.
    parseSources(sources.map((s) => (s === src ? { ...s, text: edited } : s)));
    await writeAtomic(join(this.dir, file), edited);
    return { hash: contentHash(edited) };
  }
}
