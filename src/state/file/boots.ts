/**
 * Per-boot token records in <data>/boots.jsonl: one JSON record a line, the latest line of a MAC wins.
 * Every change is appended and fdatasync'ed before its promise resolves (a spent token must stay spent
 * across a crash, or the bundle could go out twice). The server (the only writer) rewrites the file
 * with one line per MAC once it holds `compactAfter` more lines than four per MAC; opening it only
 * reads, so a CLI that opens the state never moves it under a running server. At most `maxMacs` MACs
 * are kept (the oldest boots dropped first): a MAC only gets a record by fetching its script from its
 * own address.
 */
import { join } from 'node:path';
import type { Logger } from '../../log.js';
import type { BootRecord, BootTokenStore } from '../types.js';
import { KeyedJournal, type KeyedJournalOptions } from './keyed-journal.js';

const MAX_MACS = 100_000;

function valid(r: unknown): r is BootRecord {
  const o = r as BootRecord;
  return typeof o === 'object' && o !== null && typeof o.mac === 'string' && Number.isSafeInteger(o.seq) && typeof o.address === 'string' &&
    (o.spent === undefined || typeof o.spent === 'string');
}

function journalOptions(o: { maxMacs?: number; compactAfter?: number; logger?: Logger }): KeyedJournalOptions<BootRecord> {
  return { valid, key: (r) => r.mac, maxKeys: o.maxMacs ?? MAX_MACS, compactAfter: o.compactAfter ?? 1000, ...(o.logger ? { logger: o.logger } : {}) };
}

export class FileBootTokens implements BootTokenStore {
  private constructor(private readonly journal: KeyedJournal<BootRecord>) {}

  /** Records in memory only (tools and tests that never mint a token). */
  static memory(maxMacs = MAX_MACS): FileBootTokens {
    return new FileBootTokens(KeyedJournal.memory(journalOptions({ maxMacs })));
  }

  /**
   * A boot storm's 300 scripts minted 300 tokens one sync after the other, each a thread-pool round trip
   * and a wait for the disk: records asked for while a write runs go together in the next one.
   */
  static async open(dataDir: string, opts: { maxMacs?: number; compactAfter?: number; logger?: Logger } = {}): Promise<FileBootTokens> {
    return new FileBootTokens(await KeyedJournal.open(join(dataDir, 'boots.jsonl'), journalOptions(opts)));
  }

  current(mac: string): BootRecord | undefined {
    return this.journal.get(mac);
  }

  async issue(mac: string, address: string, at: number): Promise<BootRecord> {
    const last = this.journal.get(mac)?.seq ?? 0;
    const r: BootRecord = { mac, seq: Math.max(Math.floor(at), last + 1), address };
    await this.journal.put(r);
    return r;
  }

  spend(mac: string, seq: number, at: string): { won: boolean; durable: Promise<void> } {
    const r = this.journal.get(mac);
    if (!r || r.seq !== seq || r.spent) return { won: false, durable: Promise.resolve() };
    return { won: true, durable: this.journal.put({ ...r, spent: at }) };
  }

  close(): Promise<void> {
    return this.journal.close();
  }
}
