/**
 * What each machine was last served, in <data>/served.json: read once, kept in memory, written through
 * (one atomic replace at a time, the latest state wins) after each change. This process is its only writer.
 * Records made within GATHER_MS of each other go in one write: in a boot storm, every rootfs response
 * ended in a whole-file rewrite and fsync, back to back.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeAtomic } from '../../fsutil.js';
import type { ServedEntry, ServedRecord, ServedStore } from '../types.js';
import { SerialWriter } from './serial.js';

export function servedPath(dataDir: string): string {
  return join(dataDir, 'served.json');
}

/** The record on disk, for tools that run beside (or without) a server. */
export async function readServed(dataDir: string): Promise<ServedRecord> {
  try {
    const parsed: unknown = JSON.parse(await readFile(servedPath(dataDir), 'utf8'));
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? (parsed as ServedRecord) : {};
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw err;
  }
}

/** How long a record waits for others to share its write (nobody waits on a record but the file). */
const GATHER_MS = 200;

export class FileServedStore implements ServedStore {
  private readonly writer: SerialWriter;
  private gathering: Promise<void> | undefined;
  private dirMade = false;

  private constructor(private readonly dataDir: string, private readonly rec: ServedRecord) {
    this.writer = new SerialWriter(async () => {
      if (!this.dirMade) { await mkdir(this.dataDir, { recursive: true }); this.dirMade = true; }
      // Keys are MACs: code-unit order is theirs, at a fraction of localeCompare's cost.
      const sorted = Object.fromEntries(Object.entries(this.rec).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
      await writeAtomic(servedPath(this.dataDir), `${JSON.stringify(sorted, null, 2)}\n`);
    });
  }

  static async open(dataDir: string): Promise<FileServedStore> {
    return new FileServedStore(dataDir, await readServed(dataDir));
  }

  get(mac: string): ServedEntry | undefined {
    return this.rec[mac];
  }

  all(): Readonly<ServedRecord> {
    return this.rec;
  }

  /** Resolves once a write that started after this record is on disk. */
  record(mac: string, entry: ServedEntry): Promise<void> {
    this.rec[mac] = entry;
    this.gathering ??= new Promise<void>((resolve) => setTimeout(resolve, GATHER_MS)).then(() => {
      this.gathering = undefined;
      return this.writer.request();
    });
    return this.gathering;
  }

  async close(): Promise<void> {
    await this.gathering?.catch(() => undefined);
    return this.writer.idle();
  }
}
