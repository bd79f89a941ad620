/** Console logs stay within their cap (the newest bytes kept, in memory and on disk) and only name host files. */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConsoleLogStore, consoleFileName, readConsoleFile } from '../../../src/bmc/consolelog.js';

const dir = mkdtempSync(join(tmpdir(), 'rolecast-consolelog-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('ConsoleLogStore', () => {
  it('keeps the newest maxBytes in memory and in the file, whatever is written', async () => {
    const store = new ConsoleLogStore(dir, 4096);
    const log = await store.begin('w001');
    let all = '';
    for (let i = 0; i < 400; i++) {
      const line = `line ${i} ${'x'.repeat(i % 37)}\r\n`;
      all += line;
      log.append(Buffer.from(line));
      if (i % 50 === 0) await log.flush();
    }
    expect(log.bytes().toString()).toBe(all.slice(-4096));
    expect((await store.read('w001'))?.recording).toBe(true);
    await store.end('w001', log);
    expect(statSync(join(dir, 'w001.log')).size).toBe(4096);
    expect(readFileSync(join(dir, 'w001.log'), 'utf8')).toBe(all.slice(-4096));
    const read = await readConsoleFile(dir, 'w001');
    expect(read?.recording).toBe(false);
    expect(read?.bytes.toString()).toBe(all.slice(-4096));
  });

  it('a new boot moves the last one to <host>.prev.log', async () => {
    const store = new ConsoleLogStore(dir, 4096);
    const a = await store.begin('w002');
    a.append(Buffer.from('first boot\n'));
    await store.end('w002', a);
    const b = await store.begin('w002');
    b.append(Buffer.from('second boot\n'));
    await store.end('w002', b);
    expect(readFileSync(join(dir, 'w002.prev.log'), 'utf8')).toBe('first boot\n');
    expect(readFileSync(join(dir, 'w002.log'), 'utf8')).toBe('second boot\n');
    expect(await readConsoleFile(dir, 'w404')).toBeUndefined();
  });

  it('names only host files', () => {
    expect(consoleFileName('w106')).toBe('w106.log');
    for (const bad of ['../etc/passwd', '', '.hidden', 'a/b', 'x\0y']) expect(() => consoleFileName(bad), bad).toThrow(RangeError);
  });
});
