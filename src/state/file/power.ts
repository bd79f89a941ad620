/** Power actions in <data>/power.jsonl (append-only); the last PER_HOST of each host kept in memory. */
import { mkdir, open, readFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { PowerAction, PowerLog } from '../types.js';
import { RecentByKey } from '../recent.js';

const PER_HOST = 100;

export class FilePowerLog implements PowerLog {
  private readonly byHost = new RecentByKey<PowerAction>(PER_HOST);
  private chain: Promise<void> = Promise.resolve();

  private constructor(private readonly fh: FileHandle) {}

  static async open(dataDir: string): Promise<FilePowerLog> {
    await mkdir(dataDir, { recursive: true });
    const file = join(dataDir, 'power.jsonl');
    const log = new FilePowerLog(await open(file, 'a'));
    const text = await readFile(file, 'utf8').catch(() => '');
    for (const line of text.split('\n')) {
      if (!line) continue;
      try {
        log.remember(JSON.parse(line) as PowerAction);
      } catch {
        // a torn last line from a crash mid-append: the rest stands
      }
    }
    return log;
  }

  private remember(a: PowerAction): void {
    this.byHost.add(a.host, a);
  }

  record(a: PowerAction): Promise<void> {
    this.remember(a);
    this.chain = this.chain.then(async () => { await this.fh.write(`${JSON.stringify(a)}\n`); });
    return this.chain;
  }

  list(host?: string): PowerAction[] {
    if (host !== undefined) return this.byHost.get(host);
    return this.byHost.all().sort((a, b) => a.at.localeCompare(b.at));
  }

  async close(): Promise<void> {
    await this.chain.catch(() => undefined);
    await this.fh.close();
  }
}
