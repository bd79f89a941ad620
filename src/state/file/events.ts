/**
 * The boot-event store: one timeline per MAC, kept in <data>/events.jsonl (append-only, one JSON
 * event a line) and in memory (the last PER_MAC events of each machine). Subscribers (the SSE stream)
 * see every event as it is recorded. Writes are batched; a crash loses at most the last batch of
 * events — they are a log, not leases.
 *
 * Bounded whatever arrives (issue 16: every new MAC from DHCP or an event POST grew a map and the file
 * for good): MACs whose events name no host (unknown machines, or invented ones) are capped at
 * `maxUnknownMacs` in memory, the least recently heard dropped first, with `perUnknownMac` events each;
 * when the file passes `maxFileBytes` it is rewritten (temp file, rename) with what memory keeps.
 */
import { open, readFile, mkdir, rename, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../../log.js';
import type { BootEvent } from '../../events/types.js';
import type { EventLog } from '../types.js';

const PER_MAC = 200;

export interface EventLogLimits {
  maxUnknownMacs: number;
  perUnknownMac: number;
  maxFileBytes: number;
}

export const DEFAULT_EVENT_LIMITS: EventLogLimits = { maxUnknownMacs: 5000, perUnknownMac: 20, maxFileBytes: 64 * 1024 * 1024 };

export class FileEventLog implements EventLog {
  private readonly byMac = new Map<string, BootEvent[]>();
  /** MACs never seen with a host, least recently heard first (Map order). */
  private readonly unknown = new Set<string>();
  private bytes = 0;
  private compacting = false;
  private readonly subscribers = new Set<(e: BootEvent) => void>();
  private pending: string[] = [];
  private writing: Promise<void> | undefined;

  private constructor(private fh: FileHandle, private readonly file: string, private readonly logger: Logger, private readonly now: () => Date, private readonly limits: EventLogLimits) {}

  static async open(dataDir: string, logger: Logger, now: () => Date = () => new Date(), limits: Partial<EventLogLimits> = {}): Promise<FileEventLog> {
    await mkdir(dataDir, { recursive: true });
    const file = join(dataDir, 'events.jsonl');
    const store = new FileEventLog(await open(file, 'a'), file, logger, now, { ...DEFAULT_EVENT_LIMITS, ...limits });
    store.bytes = (await stat(file).catch(() => undefined))?.size ?? 0;
    const text = await readFile(file, 'utf8').catch(() => '');
    for (const line of text.split('\n')) {
      if (!line) continue;
      try {
        store.remember(JSON.parse(line) as BootEvent);
      } catch {
        // A torn line from a crash mid-write: skip it, the rest of the timeline stands.
      }
    }
    return store;
  }

  private remember(e: BootEvent): void {
    const list = this.byMac.get(e.mac) ?? [];
    list.push(e);
    if (e.host) this.unknown.delete(e.mac);
    else if (this.unknown.has(e.mac) || list.length === 1) {
      this.unknown.delete(e.mac); // re-insert: most recently heard last
      this.unknown.add(e.mac);
    }
    const cap = this.unknown.has(e.mac) ? this.limits.perUnknownMac : PER_MAC;
    if (list.length > cap) list.splice(0, list.length - cap);
    this.byMac.set(e.mac, list);
    while (this.unknown.size > this.limits.maxUnknownMacs) {
      const oldest = this.unknown.values().next().value as string;
      this.unknown.delete(oldest);
      this.byMac.delete(oldest);
    }
  }

  emit(event: Omit<BootEvent, 'at'> & { at?: string }): void {
    if (!event.mac) return;
    const e: BootEvent = { ...event, at: event.at ?? this.now().toISOString() };
    this.remember(e);
    for (const fn of this.subscribers) fn(e);
    this.pending.push(`${JSON.stringify(e)}\n`);
    this.writing ??= this.write();
  }

  private async write(): Promise<void> {
    while (this.pending.length) {
      const batch = this.pending.splice(0).join('');
      try {
        await this.fh.write(batch);
        this.bytes += Buffer.byteLength(batch);
        if (this.bytes > this.limits.maxFileBytes) await this.compact();
      } catch (err) {
        this.logger.error({ err }, 'cannot write boot events');
      }
    }
    this.writing = undefined;
  }

  /** Rewrite the file with what memory keeps (bounded), oldest first: a temp file renamed over it. */
  private async compact(): Promise<void> {
    if (this.compacting) return;
    this.compacting = true;
    try {
      const all = [...this.byMac.values()].flat().sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
      const text = all.map((e) => `${JSON.stringify(e)}\n`).join('');
      const tmp = `${this.file}.tmp`;
      const fh = await open(tmp, 'w');
      try { await fh.write(text); await fh.sync(); } finally { await fh.close(); }
      await rename(tmp, this.file);
      const old = this.fh;
      this.fh = await open(this.file, 'a');
      await old.close();
      const before = this.bytes;
      this.bytes = Buffer.byteLength(text);
      this.logger.info({ file: this.file, before, after: this.bytes, events: all.length }, 'boot event log compacted');
    } finally {
      this.compacting = false;
    }
  }

  timeline(mac: string): BootEvent[] {
    return [...(this.byMac.get(mac) ?? [])];
  }

  last(mac: string): BootEvent | undefined {
    return this.byMac.get(mac)?.at(-1);
  }

  subscribe(fn: (e: BootEvent) => void): () => void {
    this.subscribers.add(fn);
    return () => this.subscribers.delete(fn);
  }

  async close(): Promise<void> {
    await this.writing;
    await this.fh.close();
  }
}

/** One machine's timeline from the data directory, for tools (the server need not run). */
export async function readTimeline(dataDir: string, mac: string): Promise<BootEvent[]> {
  const text = await readFile(join(dataDir, 'events.jsonl'), 'utf8').catch(() => '');
  const out: BootEvent[] = [];
  for (const line of text.split('\n')) {
    if (!line.includes(mac)) continue;
    try {
      const e = JSON.parse(line) as BootEvent;
      if (e.mac === mac) out.push(e);
    } catch {
      // torn line: skip
    }
  }
  return out;
}
