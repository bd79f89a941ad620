/**
 * Power actions in <data>/power.jsonl (append-only); the last PER_HOST of each host kept in memory. The
 * journal follows other processes' appends: a `rolecast power` run beside `rolecast serve` shows in
 * the server's power log (the UI, /api/machines/<host>/power).
 */
import { join } from 'node:path';
import type { Logger } from '../../log.js';
import { silentLogger } from '../../log.js';
import type { PowerAction, PowerLog } from '../types.js';
import { RecentByKey } from '../recent.js';
import { SharedJournal } from './journal.js';

const PER_HOST = 100;

function parse(line: string): PowerAction | undefined {
  try {
    const a = JSON.parse(line) as PowerAction;
    return typeof a === 'object' && a !== null && typeof a.host === 'string' && typeof a.op === 'string' && typeof a.at === 'string' && typeof a.ok === 'boolean' ? a : undefined;
  } catch {
    return undefined; // a torn last line from a crash mid-append: the rest stands
  }
}

export class FilePowerLog implements PowerLog {
  private readonly byHost = new RecentByKey<PowerAction>(PER_HOST);
  private journal!: SharedJournal;

  static async open(dataDir: string, logger: Logger = silentLogger(), opts: { follow?: boolean } = {}): Promise<FilePowerLog> {
    const log = new FilePowerLog();
    log.journal = await SharedJournal.open(join(dataDir, 'power.jsonl'), {
      logger, ...opts,
      onLine: (line) => { const a = parse(line); if (a) log.byHost.add(a.host, a); },
    });
    return log;
  }

  record(a: PowerAction): Promise<void> {
    this.byHost.add(a.host, a);
    return this.journal.append(`${JSON.stringify(a)}\n`);
  }

  list(host?: string): PowerAction[] {
    if (host !== undefined) return this.byHost.get(host);
    return this.byHost.all().sort((a, b) => a.at.localeCompare(b.at));
  }

  close(): Promise<void> {
    return this.journal.close();
  }
}
