/**
 * What each machine was last served, in <data>/served.json: read once, kept in memory, written through
 * (one atomic replace at a time, the latest state wins) after each change. This process is its only writer.
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

export class FileServedStore implements ServedStore {
  private readonly writer: SerialWriter;

  private constructor(private readonly dataDir: string, private readonly rec: ServedRecord) {
    this.writer = new SerialWriter(async () => {
      await mkdir(this.dataDir, { recursive: true });
      const sorted = Object.fromEntries(Object.entries(this.rec).sort(([a], [b]) => a.localeCompare(b)));
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

  record(mac: string, entry: ServedEntry): Promise<void> {
    this.rec[mac] = entry;
    return this.writer.request();
  }

  close(): Promise<void> {
    return this.writer.idle();
  }
}
