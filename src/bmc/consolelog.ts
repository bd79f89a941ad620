/**
 * Per-machine console logs: <data>/console/<host>.log holds the raw bytes of the machine's last
 * recorded boot (the one before it is <host>.prev.log), at most `maxBytes` — the newest bytes are kept,
 * as the end of a failed boot is what matters. Memory holds the same bounded tail while a boot is
 * recorded; the file is brought up to date once a second and when the recording ends, so a crash
 * loses at most a second of screen.
 *
 * Local to the server that holds the Serial over LAN session (like its radvd files): a console log
 * is not shared state, and another server of the site records its own machines' boots.
 */
import { mkdir, open, readFile, rename, stat } from 'node:fs/promises';
import { join } from 'node:path';

const FLUSH_MS = 1000;

/** Host names are inventory names; anything else cannot name a file here. */
export function consoleFileName(host: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/.test(host)) throw new RangeError(`not a host name: ${JSON.stringify(host)}`);
  return `${host}.log`;
}

/** One boot's console: a bounded tail in memory, mirrored to its file. */
export class ConsoleLog {
  private chunks: Buffer[] = [];
  private size = 0;
  /** Bytes appended since the last flush, and whether the file must be rewritten (the tail moved on). */
  private pending: Buffer[] = [];
  private fileBytes = 0;
  private rewrite = false;
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();

  constructor(private readonly file: string, private readonly maxBytes: number) {}

  append(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.size += chunk.length;
    while (this.size > this.maxBytes) {
      const first = this.chunks[0]!;
      const drop = Math.min(first.length, this.size - this.maxBytes);
      if (drop === first.length) this.chunks.shift();
      else this.chunks[0] = first.subarray(drop);
      this.size -= drop;
    }
    if (this.fileBytes + chunk.length > this.maxBytes) this.rewrite = true;
    else this.pending.push(chunk);
    this.timer ??= setTimeout(() => { this.timer = undefined; void this.flush(); }, FLUSH_MS).unref();
  }

  /** The bounded tail recorded so far. */
  bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }

  /** Bring the file up to date: append what is new, or rewrite it with the tail once it would pass the cap. */
  flush(): Promise<void> {
    this.flushing = this.flushing.then(async () => {
      if (this.rewrite) {
        this.rewrite = false;
        this.pending = [];
        const tail = this.bytes();
        const tmp = `${this.file}.tmp`;
        const fh = await open(tmp, 'w');
        try { await fh.write(tail); } finally { await fh.close(); }
        await rename(tmp, this.file);
        this.fileBytes = tail.length;
      } else if (this.pending.length) {
        const data = Buffer.concat(this.pending.splice(0));
        const fh = await open(this.file, 'a');
        try { await fh.write(data); } finally { await fh.close(); }
        this.fileBytes += data.length;
      }
    }).catch(() => { /* a full disk must not end the recording; the memory tail stands */ });
    return this.flushing;
  }

  async close(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.flush();
  }
}

export class ConsoleLogStore {
  private readonly live = new Map<string, ConsoleLog>();

  constructor(readonly dir: string, readonly maxBytes: number) {}

  /** A new boot of `host`: the last boot's log becomes <host>.prev.log, and a fresh one starts. */
  async begin(host: string): Promise<ConsoleLog> {
    const name = consoleFileName(host);
    await mkdir(this.dir, { recursive: true });
    const file = join(this.dir, name);
    await rename(file, join(this.dir, name.replace(/\.log$/, '.prev.log'))).catch(() => undefined);
    const fh = await open(file, 'w');
    await fh.close();
    const log = new ConsoleLog(file, this.maxBytes);
    this.live.set(host, log);
    return log;
  }

  /** The recording has ended: its file is complete. */
  async end(host: string, log: ConsoleLog): Promise<void> {
    await log.close();
    if (this.live.get(host) === log) this.live.delete(host);
  }

  /** The last boot's console of `host` (live while it is recorded), or undefined when none was kept. */
  async read(host: string): Promise<{ bytes: Buffer; recording: boolean; updated?: string } | undefined> {
    const live = this.live.get(host);
    if (live) return { bytes: live.bytes(), recording: true, updated: new Date().toISOString() };
    return readConsoleFile(this.dir, host);
  }
}

/** A console log from a data directory, for tools (the server need not run). */
export async function readConsoleFile(dir: string, host: string): Promise<{ bytes: Buffer; recording: boolean; updated?: string } | undefined> {
  const file = join(dir, consoleFileName(host));
  try {
    const [bytes, st] = await Promise.all([readFile(file), stat(file)]);
    return { bytes, recording: false, updated: st.mtime.toISOString() };
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') return undefined;
    throw err;
  }
}
