/**
 * The boot-event store: one timeline per MAC, kept in <data>/events.jsonl (append-only, one JSON
 * event a line) and in memory (the last PER_MAC events of each machine). Subscribers (the SSE stream)
 * see every event as it is recorded. Writes are batched; a crash loses at most the last batch of
 * events — they are a log, not leases.
 */
import { open, readFile, mkdir, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../../log.js';
import type { BootEvent } from '../../events/types.js';
import type { EventLog } from '../types.js';

const PER_MAC = 200;

export class FileEventLog implements EventLog {
  private readonly byMac = new Map<string, BootEvent[]>();
  private readonly subscribers = new Set<(e: BootEvent) => void>();
  private pending: string[] = [];
  private writing: Promise<void> | undefined;

  private constructor(private readonly fh: FileHandle, private readonly logger: Logger, private readonly now: () => Date) {}

  static async open(dataDir: string, logger: Logger, now: () => Date = () => new Date()): Promise<FileEventLog> {
    await mkdir(dataDir, { recursive: true });
    const file = join(dataDir, 'events.jsonl');
    const store = new FileEventLog(await open(file, 'a'), logger, now);
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
    if (list.length > PER_MAC) list.splice(0, list.length - PER_MAC);
    this.byMac.set(e.mac, list);
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
      } catch (err) {
        this.logger.error({ err }, 'cannot write boot events');
      }
    }
    this.writing = undefined;
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
