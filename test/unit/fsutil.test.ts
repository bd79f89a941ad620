/** singleFlight: a burst of identical lookups costs one, and no answer outlives the lookup it came from. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { singleFlight, statShared } from '../../src/fsutil.js';

function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<T>((ok, fail) => { resolve = ok; reject = fail; });
  return { promise, resolve, reject };
}

describe('singleFlight', () => {
  it('calls made while a lookup runs share it; per key', async () => {
    const pending = new Map<string, ReturnType<typeof deferred<number>>>();
    const calls: string[] = [];
    const get = singleFlight((k) => { calls.push(k); const d = deferred<number>(); pending.set(k, d); return d.promise; });
    const a = [get('x'), get('x'), get('x')];
    const b = get('y');
    expect(calls).toEqual(['x', 'y']);
    pending.get('x')!.resolve(1);
    pending.get('y')!.resolve(2);
    expect(await Promise.all(a)).toEqual([1, 1, 1]);
    expect(await b).toBe(2);
  });

  it('a call after the lookup settled asks again (no caching), also after a failure', async () => {
    let n = 0;
    const get = singleFlight(async () => { n++; if (n === 2) throw new Error('gone'); return n; });
    expect(await get('k')).toBe(1);
    await expect(get('k')).rejects.toThrow('gone');
    expect(await get('k')).toBe(3);
    expect(n).toBe(3);
  });

  it('statShared sees a file replaced between two calls', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rolecast-sf-'));
    try {
      const f = join(dir, 'a');
      writeFileSync(f, 'one');
      expect((await statShared(f)).size).toBe(3);
      writeFileSync(f, 'three');
      expect((await statShared(f)).size).toBe(5);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
