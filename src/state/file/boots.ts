/**
 * Per-boot token records in <data>/boots.jsonl: one JSON record a line, the latest line of a MAC wins.
 * Every change is appended and fdatasync'ed before its promise resolves (a spent token must stay spent
 * across a crash, or the bundle could go out twice). The server (the only writer) rewrites the file
 * with one line per MAC once it holds `compactAfter` more lines than four per MAC; opening it only
 * reads, so a CLI that opens the state never moves it under a running server. At most `maxMacs` MACs
 * are kept (the oldest boots dropped first): a MAC only gets a record by fetching its script from its
 * own address.
 */
import { mkdir, open, readFile, rename, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { BootRecord, BootTokenStore } from '../types.js';

const MAX_MACS = 100_000;

function valid(r: unknown): r is BootRecord {
  const o = r as BootRecord;
  return typeof o === 'object' && o !== null && typeof o.mac === 'string' && Number.isSafeInteger(o.seq) && typeof o.address === 'string' &&
    (o.spent === undefined || typeof o.spent === 'string');
}

export class FileBootTokens implements BootTokenStore {
  private readonly byMac = new Map<string, BootRecord>();
  private lines = 0;
  private queue: { line: string; resolve(): void; reject(err: unknown): void }[] = [];
  private flushing: Promise<void> | undefined;

  private constructor(private fh: FileHandle | undefined, private readonly file: string, private readonly maxMacs: number, private readonly compactAfter: number) {}

  /** Records in memory only (tools and tests that never mint a token). */
  static memory(maxMacs = MAX_MACS): FileBootTokens {
    return new FileBootTokens(undefined, '', maxMacs, 0);
  }

  static async open(dataDir: string, opts: { maxMacs?: number; compactAfter?: number } = {}): Promise<FileBootTokens> {
    await mkdir(dataDir, { recursive: true });
    const file = join(dataDir, 'boots.jsonl');
    const text = await readFile(file, 'utf8').catch(() => '');
    const store = new FileBootTokens(await open(file, 'a', 0o600), file, opts.maxMacs ?? MAX_MACS, opts.compactAfter ?? 1000);
    for (const line of text.split('\n')) {
      try {
        const r: unknown = line ? JSON.parse(line) : undefined;
        if (valid(r)) store.keep(r);
        if (line) store.lines++;
      } catch {
        // a torn last line from a crash: the record before it stands
      }
    }
    return store;
  }

  private keep(r: BootRecord): void {
    this.byMac.delete(r.mac); // re-insert: Map order is boot order, oldest first
    this.byMac.set(r.mac, r);
    while (this.byMac.size > this.maxMacs) this.byMac.delete(this.byMac.keys().next().value as string);
  }

  /**
   * Append one record, durable when the returned promise resolves. Records asked for while a write runs
   * go together in the next one (one write and one fdatasync for all of them: a boot storm's 300 scripts
   * minted 300 tokens one sync after the other, each a thread-pool round trip and a wait for the disk).
   */
  private persist(r: BootRecord): Promise<void> {
    if (!this.fh) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ line: `${JSON.stringify(r)}\n`, resolve, reject });
      this.flushing ??= this.flush().finally(() => { this.flushing = undefined; });
    });
  }

  private async flush(): Promise<void> {
    while (this.queue.length) {
      const batch = this.queue;
      this.queue = [];
      try {
        await this.fh!.write(batch.map((b) => b.line).join(''));
        await this.fh!.datasync();
        this.lines += batch.length;
        if (this.lines > 4 * this.byMac.size + this.compactAfter) await this.compact();
        for (const b of batch) b.resolve();
      } catch (err) {
        for (const b of batch) b.reject(err);
      }
    }
  }

  private async compact(): Promise<void> {
    const tmp = `${this.file}.tmp`;
    const fh = await open(tmp, 'w', 0o600);
    try {
      await fh.write([...this.byMac.values()].map((r) => `${JSON.stringify(r)}\n`).join(''));
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, this.file);
    const old = this.fh;
    this.fh = await open(this.file, 'a', 0o600);
    await old?.close();
    this.lines = this.byMac.size;
  }

  current(mac: string): BootRecord | undefined {
    return this.byMac.get(mac);
  }

  async issue(mac: string, address: string, at: number): Promise<BootRecord> {
    const last = this.byMac.get(mac)?.seq ?? 0;
    const r: BootRecord = { mac, seq: Math.max(Math.floor(at), last + 1), address };
    this.keep(r);
    await this.persist(r);
    return r;
  }

  spend(mac: string, seq: number, at: string): { won: boolean; durable: Promise<void> } {
    const r = this.byMac.get(mac);
    if (!r || r.seq !== seq || r.spent) return { won: false, durable: Promise.resolve() };
    const spent = { ...r, spent: at };
    this.byMac.set(mac, spent);
    return { won: true, durable: this.persist(spent) };
  }

  async close(): Promise<void> {
    await this.flushing;
    await this.fh?.close();
  }
}
