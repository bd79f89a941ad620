/**
 * What each machine was last served, in <data>/served.jsonl: one line per record, the latest line of a
 * MAC wins (a KeyedJournal). Each record is one appended line, fdatasync'd with whatever others came
 * meanwhile, so a boot storm costs a line per booted machine, not a rewrite of every machine's record:
 * the whole-file served.json this replaces cost 22-44 ms of the event loop per write at 10,000
 * machines (sort and JSON of 1.9 MB) and a 1.9 MB fsync, every 200 ms through a storm.
 *
 * A served.json left by an older rolecast is read first (its records are older than every line), and
 * removed once the journal's first compaction has written them all to served.jsonl. This process is the
 * only writer; tools that open the state only read.
 */
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { RolecastError } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { ServedEntry, ServedRecord, ServedStore } from '../types.js';
import { KeyedJournal } from './keyed-journal.js';

/** The older whole-file record (read, never written). */
const LEGACY = 'served.json';
const JOURNAL = 'served.jsonl';

type Line = ServedEntry & { mac: string };

function valid(r: unknown): r is Line {
  const o = r as Line;
  return typeof o === 'object' && o !== null && typeof o.mac === 'string' && typeof o.role === 'string' && typeof o.hash === 'string'
    && typeof o.at === 'string' && (o.host === undefined || typeof o.host === 'string');
}

function entryOf(l: Line): ServedEntry {
  const { mac: _mac, ...entry } = l;
  return entry;
}

async function readLegacy(dataDir: string): Promise<Line[]> {
  const file = join(dataDir, LEGACY);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    // Not dropped: the first compaction would then remove the file and its records with it.
    throw new RolecastError('E_STATE_CORRUPT', `${file} is unreadable (${(err as Error).message}): fix or move it aside`, { cause: err });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new RolecastError('E_STATE_CORRUPT', `${file} is not an object of records by MAC: fix or move it aside`);
  }
  return Object.entries(parsed as Record<string, unknown>).map(([mac, e]) => ({ ...(e as ServedEntry), mac })).filter(valid);
}

export class FileServedStore implements ServedStore {
  private readonly rec: ServedRecord = {};

  private constructor(private readonly journal: KeyedJournal<Line>) {
    for (const l of journal.values()) this.rec[l.mac] = entryOf(l);
  }

  static async open(dataDir: string, logger?: Logger): Promise<FileServedStore> {
    const journal = await KeyedJournal.open<Line>(join(dataDir, JOURNAL), {
      // Readable by others, as served.json was: `rolecast diff` run by an operator reads it. No secret in it.
      valid, key: (l) => l.mac, before: await readLegacy(dataDir), mode: 0o644,
      // served.jsonl now holds every record served.json had.
      onCompacted: () => rm(join(dataDir, LEGACY), { force: true }),
      ...(logger ? { logger } : {}),
    });
    return new FileServedStore(journal);
  }

  get(mac: string): ServedEntry | undefined {
    return this.rec[mac];
  }

  all(): Readonly<ServedRecord> {
    return this.rec;
  }

  /** Resolves once the record is on disk. */
  record(mac: string, entry: ServedEntry): Promise<void> {
    this.rec[mac] = entry;
    return this.journal.put({ mac, ...entry });
  }

  close(): Promise<void> {
    return this.journal.close();
  }
}
