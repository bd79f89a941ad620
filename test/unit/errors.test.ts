/** The error catalogue and its documentation agree, and every code the sources throw is in the catalogue. */
import { describe, expect, it } from 'vitest';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ERRORS } from '../../src/errors.js';

const ROOT = resolve(import.meta.dirname, '../..');

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : [];
  });
}

describe('error catalogue', () => {
  it('docs/errors.md lists exactly the catalogue, with the same HTTP status and exit code', () => {
    const rows = readFileSync(join(ROOT, 'docs/errors.md'), 'utf8').split('\n').filter((l) => l.startsWith('| E_'));
    const documented = Object.fromEntries(rows.map((l) => {
      const [code, status, exit] = l.split('|').map((c) => c.trim()).slice(1, 4);
      return [code!, { status: Number(status), exit: Number(exit) }];
    }));
    const catalogue = Object.fromEntries(Object.entries(ERRORS).map(([c, s]) => [c, { status: s.status, exit: s.exit }]));
    expect(documented).toEqual(catalogue);
  });

  it('every E_ code written in src/ is in the catalogue', () => {
    const used = new Set<string>();
    for (const f of sources(join(ROOT, 'src'))) for (const m of readFileSync(f, 'utf8').matchAll(/'(E_[A-Z_]+)'/g)) used.add(m[1]!);
    expect([...used].filter((c) => !(c in ERRORS))).toEqual([]);
  });

  it('statuses say who failed: 4xx the request or the inventory, 5xx rolecast; usage errors exit 2, BMC failures 3', () => {
    expect(ERRORS.E_NO_IMAGE.status).toBe(500); // an image the inventory names is missing: we broke
    expect(ERRORS.E_UNKNOWN_MACHINE.status).toBe(404);
    expect(ERRORS.E_USAGE.exit).toBe(2);
    for (const [code, s] of Object.entries(ERRORS)) {
      expect(s.fix.length, code).toBeGreaterThan(5);
      if (code !== 'E_USAGE') expect(s.exit, code).toBe(code.startsWith('E_BMC_') ? 3 : 1);
    }
  });
});
