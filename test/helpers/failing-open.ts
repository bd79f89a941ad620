/**
 * node:fs/promises with `open` failing (EMFILE) for appends to one journal, a given number of times: for
 * a vi.mock factory, to make a compaction's reopen fail the way an exhausted descriptor table does.
 *
 *   const failures = { left: 0 };
 *   vi.mock('node:fs/promises', async (orig) => (await import('../../helpers/failing-open.js')).failingAppendOpens(await orig(), 'x.jsonl', failures));
 */
type FsPromises = typeof import('node:fs/promises');

export function failingAppendOpens(real: FsPromises, fileSuffix: string, failures: { left: number }): FsPromises {
  return {
    ...real,
    open: (path: Parameters<FsPromises['open']>[0], flags?: Parameters<FsPromises['open']>[1], mode?: Parameters<FsPromises['open']>[2]) => {
      if (flags === 'a' && String(path).endsWith(fileSuffix) && failures.left > 0) {
        failures.left--;
        return Promise.reject(Object.assign(new Error('EMFILE: too many open files (test)'), { code: 'EMFILE' }));
      }
      return real.open(path, flags, mode);
    },
  };
}
