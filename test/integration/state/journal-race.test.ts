/**
 * The shared journal (src/state/file/journal.ts) when an append races a compaction by another process
 * (here two journals on one file, each with its own descriptors, as two processes have). A line must be
 * in the compacted file exactly once: it used to be there twice when the writer's line was already in
 * the compactor's body (or carried tail) and the writer, finding the file renamed, appended it again —
 * followers skipped the copy, a fresh load showed it twice.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SharedJournal } from '../../../src/state/file/journal.js';
import { silentLogger } from '../../../src/log.js';

const dirs: string[] = [];
afterEach(() => { for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true }); });

/** A compacting follower (the server) and an append-only writer (a CLI) on one new journal. */
async function pair(): Promise<{ file: string; server: SharedJournal; cli: SharedJournal; known: string[]; compact(): Promise<unknown> }> {
  const d = mkdtempSync(join(tmpdir(), 'rolecast-journal-'));
  dirs.push(d);
  const file = join(d, 'events.jsonl');
  const known: string[] = [];
  const server = await SharedJournal.open(file, { logger: silentLogger(), onLine: (l) => known.push(l) });
  const cli = await SharedJournal.open(file, { logger: silentLogger(), onLine: () => undefined, follow: false, load: false });
  return { file, server, cli, known, compact: () => server.replace(() => known.map((l) => `${l}\n`).join('')) };
}

/** How often each line is in the file now (journal markers left out): what a fresh load reads. */
function onDisk(file: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const l of readFileSync(file, 'utf8').split('\n')) if (l && !l.startsWith('{"journal"')) m.set(l, (m.get(l) ?? 0) + 1);
  return m;
}

describe('shared journal: an append racing a compaction', () => {
  it('a line the compactor already took (read before its rename) is not appended again by its writer', async () => {
    const { file, server, cli, compact } = await pair();
    // The CLI's write lands in the old file; the whole compaction runs before the CLI looks at the path.
    const fh = (cli as unknown as { out: { fh: { write: (...a: unknown[]) => Promise<unknown> } } }).out.fh;
    const write = fh.write.bind(fh);
    fh.write = async (...args: unknown[]) => {
      const r = await write(...args);
      fh.write = write;
      await compact();
      return r;
    };
    await cli.append('{"line":"one"}\n');
    await server.close();
    await cli.close();
    expect([...onDisk(file)]).toEqual([['{"line":"one"}', 1]]);
  });

  it('a line written to the old file after the compaction ended is appended again, once', async () => {
    const { file, server, cli, compact } = await pair();
    await cli.append('{"line":"before"}\n');
    await new Promise((r) => setTimeout(r, 50));
    await compact(); // the CLI's descriptor still names the old file
    await cli.append('{"line":"after"}\n');
    await server.close();
    await cli.close();
    expect([...onDisk(file)].sort()).toEqual([['{"line":"after"}', 1], ['{"line":"before"}', 1]]);
  });

  it('100 compactions under a writer appending all the time: every line once', async () => {
    const { file, server, cli, compact } = await pair();
    const mine: string[] = [];
    let stop = false;
    const writer = (async () => {
      for (let i = 0; !stop; i++) {
        const line = `{"cli":${i}}`;
        mine.push(line);
        await cli.append(`${line}\n`);
      }
    })();
    for (let i = 0; i < 100; i++) await compact();
    stop = true;
    await writer;
    await server.close();
    await cli.close();
    const disk = onDisk(file);
    expect(mine.length).toBeGreaterThan(100);
    expect(mine.filter((l) => disk.get(l) !== 1)).toEqual([]);
  });
});
