/** The discovery inbox in <data>/discovered.json (one document, written through atomically). */
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeAtomic } from '../../fsutil.js';
import { RolecastError } from '../../errors.js';
import type { DiscoveredRecord, DiscoveredStore } from '../types.js';
import { SerialWriter } from './serial.js';

export class FileDiscoveredStore implements DiscoveredStore {
  private readonly writer: SerialWriter;

  private constructor(private readonly file: string, private readonly byMac: Map<string, DiscoveredRecord>) {
    this.writer = new SerialWriter(async () => {
      const list = [...this.byMac.values()].sort((a, b) => a.mac.localeCompare(b.mac));
      await writeAtomic(this.file, `${JSON.stringify(list, null, 2)}\n`);
    });
  }

  static async open(dataDir: string): Promise<FileDiscoveredStore> {
    await mkdir(dataDir, { recursive: true });
    const file = join(dataDir, 'discovered.json');
    let list: DiscoveredRecord[] = [];
    try {
      const parsed: unknown = JSON.parse(await readFile(file, 'utf8'));
      if (!Array.isArray(parsed)) throw new Error('not a list');
      list = parsed as DiscoveredRecord[];
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        // Never start from an empty inbox over a file we could not read: that would lose it at the next write.
        throw new RolecastError('E_STATE_CORRUPT', `${file} is unreadable (${(err as Error).message}): fix or move it aside`, { cause: err });
      }
    }
    return new FileDiscoveredStore(file, new Map(list.map((r) => [r.mac, r])));
  }

  list(): DiscoveredRecord[] {
    return [...this.byMac.values()];
  }

  get(mac: string): DiscoveredRecord | undefined {
    return this.byMac.get(mac);
  }

  put(rec: DiscoveredRecord): Promise<void> {
    this.byMac.set(rec.mac, rec);
    return this.writer.request();
  }

  async remove(mac: string): Promise<boolean> {
    if (!this.byMac.delete(mac)) return false;
    await this.writer.request();
    return true;
  }

  close(): Promise<void> {
    return this.writer.idle();
  }
}
