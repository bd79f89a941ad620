/**
 * The boot-event store: <data>/events.jsonl (append-only, one JSON event a line) and the in-memory
 * timelines (Timelines: the last events of each machine, bounded for unknown MACs). Subscribers (the SSE
 * stream) see every event as it is recorded — here, or by another process on the same data directory
 * (a CLI's power request while `rolecast serve` runs): the journal follows their appends. Writes are
 * batched; a crash loses at most the last batch of events — they are a log, not leases.
 *
 * When the file passes `maxFileBytes` it is compacted to what memory keeps (temp file, rename), so disk
 * stays bounded whatever MACs arrive (issue 16).
 */
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Logger } from '../../log.js';
import type { BootEvent } from '../../events/types.js';
import type { EventLog } from '../types.js';
import { isBootEvent, Timelines, type TimelineLimits } from '../timelines.js';
import { SharedJournal } from './journal.js';

export interface EventLogLimits extends Pick<TimelineLimits, 'maxUnknownMacs' | 'perUnknownMac'> {
  maxFileBytes: number;
}

export const DEFAULT_EVENT_LIMITS: EventLogLimits = { maxUnknownMacs: 5000, perUnknownMac: 20, maxFileBytes: 64 * 1024 * 1024 };

export interface FileEventLogOptions {
  /** Follow appends made by other processes (default true). */
  follow?: boolean;
  /** Read the file's events into the timelines at open (default true). */
  load?: boolean;
}

function parse(line: string): BootEvent | undefined {
  try {
    const e: unknown = JSON.parse(line);
    return isBootEvent(e) ? e : undefined;
  } catch {
    return undefined; // a torn line from a crash mid-write: the rest of the timeline stands
  }
}

export class FileEventLog implements EventLog {
  private readonly timelines: Timelines;
  private journal!: SharedJournal;
  private pending: string[] = [];
  private writing: Promise<void> | undefined;
  private loaded = true;

  private constructor(private readonly file: string, private readonly logger: Logger, private readonly now: () => Date, private readonly limits: EventLogLimits) {
    this.timelines = new Timelines(logger, limits);
  }

  static async open(dataDir: string, logger: Logger, now: () => Date = () => new Date(), limits: Partial<EventLogLimits> = {}, opts: FileEventLogOptions = {}): Promise<FileEventLog> {
    const file = join(dataDir, 'events.jsonl');
    const log = new FileEventLog(file, logger, now, { ...DEFAULT_EVENT_LIMITS, ...limits });
    log.loaded = opts.load !== false;
    log.journal = await SharedJournal.open(file, {
      logger, ...opts,
      onLine: (line, how) => {
        const e = parse(line);
        if (!e) return;
        if (how === 'load') log.timelines.remember(e);
        else log.timelines.deliver(e);
      },
    });
    return log;
  }

  emit(event: Omit<BootEvent, 'at'> & { at?: string }): void {
    if (!event.mac) return;
    // An event stamped already (the DHCP thread's, decoded fresh for this call) is kept as it is: same keys, same line.
    const e: BootEvent = event.at !== undefined ? event as BootEvent : { ...event, at: this.now().toISOString() };
    this.timelines.deliver(e);
    this.pending.push(`${JSON.stringify(e)}\n`);
    this.writing ??= this.write();
  }

  private async write(): Promise<void> {
    while (this.pending.length) {
      const batch = this.pending.splice(0).join('');
      try {
        await this.journal.append(batch);
        // Only a process that holds the timelines may rewrite the file with them (one opened without
        // loading them — a CLI that only appends — would write back nothing but its own events).
        if (this.loaded && this.journal.size > this.limits.maxFileBytes) await this.compact();
      } catch (err) {
        this.logger.error({ err }, 'cannot write boot events');
      }
    }
    this.writing = undefined;
  }

  /** Rewrite the file with what memory keeps (bounded), oldest first. */
  private async compact(): Promise<void> {
    let events = 0;
    const { before, after } = await this.journal.replace(() => {
      const all = this.timelines.all();
      events = all.length;
      return all.map((e) => `${JSON.stringify(e)}\n`).join('');
    });
    this.logger.info({ file: this.file, before, after, events }, 'boot event log compacted');
  }

  timeline(mac: string): BootEvent[] {
    return this.timelines.timeline(mac);
  }

  last(mac: string): BootEvent | undefined {
    return this.timelines.last(mac);
  }

  subscribe(fn: (e: BootEvent) => void): () => void {
    return this.timelines.subscribe(fn);
  }

  history(mac: string): Promise<BootEvent[]> {
    return readTimeline(dirname(this.file), mac);
  }

  async close(): Promise<void> {
    await this.writing;
    await this.journal.close();
  }
}

/** One machine's whole timeline from the data directory (every event the file holds for it). */
export async function readTimeline(dataDir: string, mac: string): Promise<BootEvent[]> {
  const text = await readFile(join(dataDir, 'events.jsonl'), 'utf8').catch(() => '');
  const out: BootEvent[] = [];
  for (const line of text.split('\n')) {
    if (!line.includes(mac)) continue;
    const e = parse(line);
    if (e?.mac === mac) out.push(e);
  }
  return out;
}
