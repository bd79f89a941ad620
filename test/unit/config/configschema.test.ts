/**
 * The server config checked by a JSON Schema (ajv, compiled from the config's shape): every problem at once,
 * each as file:line:col: key: message, sorted by position; the CLI names the file.
 */
import { describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../../src/configfile.js';
import { ProfileError, formatIssue } from '../../../src/errors.js';
import { rolecastHere } from '../../integration/cli/helpers.js';

function issues(text: string): string[] {
  try { parseConfig(text, 'rc.yaml'); } catch (err) { if (err instanceof ProfileError) return err.issues.map(formatIssue); throw err; }
  return [];
}

describe('server config schema (ajv)', () => {
  it('a document that is not a mapping', () => {
    expect(issues('42\n')).toEqual(['rc.yaml:1:1: (root): must be a mapping']);
    expect(issues('- a\n')).toEqual(['rc.yaml:1:1: (root): must be a mapping']);
  });

  it('nested sections: wrong types, unknown keys, in file order', () => {
    expect(issues('user: [a]\nreload:\n  settleMs: x\n  nope: 1\nhttp:\n  port: .inf\n')).toEqual([
      'rc.yaml:1:7: user: must be a string',
      'rc.yaml:3:13: reload.settleMs: must be a number',
      'rc.yaml:4:3: reload.nope: unknown key "nope" (expected one of: settleMs, maxDropShare)',
      'rc.yaml:6:9: http.port: must be a number',
    ]);
  });

  it('the bundled example server config (packaging/rolecast.yaml) is valid', async () => {
    const { readFileSync } = await import('node:fs');
    const file = join(import.meta.dirname, '../../../packaging/rolecast.yaml');
    expect(issues(readFileSync(file, 'utf8'))).toEqual([]);
  });

  it('the CLI says which config file is invalid, with every error, exit 1', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rolecast-cfg-'));
    try {
      const file = join(dir, 'rc.yaml');
      writeFileSync(file, 'dhcp:\n  mode: sometimes\n');
      const r = await rolecastHere(['validate', '--config', file]);
      expect(r.code).toBe(1);
      expect(r.stderr).toBe(`rolecast validate: server config ${file} is invalid (1 error):\n${file}:2:9: dhcp.mode: must be one of: authoritative, proxy, off\n`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
