// The initramfs's phone-home builds its JSON body in busybox ash: json_str must escape whatever a
// failure message holds (quotes, backslashes, newlines, control bytes) into a string JSON.parse accepts.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '../../..');
const init = readFileSync(join(ROOT, 'images/initramfs/init'), 'utf8');
const fn = /^json_str\(\) \{\n[\s\S]*?\n\}\n/m.exec(init)?.[0];
const hasBusybox = spawnSync('busybox', ['true']).status === 0;

describe.skipIf(!hasBusybox)('initramfs json_str (busybox ash)', () => {
  it('is defined in images/initramfs/init', () => {
    expect(fn).toBeDefined();
  });

  it.each([
    ['plain', 'wget: server returned error: HTTP/1.1 404 Not Found'],
    ['quotes and backslashes', 'say "hi" \\ C:\\path\\"x"'],
    ['newlines and tabs', 'line one\nline\ttwo\n\nlast'],
    ['carriage returns and control bytes', 'a\rb\x01c\x1bd'],
    ['trailing newline', 'ends here\n'],
  ])('%s', (_name, input) => {
    const script = `${fn}\nprintf '{"d":"%s"}' "$(json_str "$X")"\n`;
    const r = spawnSync('busybox', ['sh', '-c', script], { encoding: 'utf8', env: { X: input, PATH: process.env.PATH } });
    expect(r.status, r.stderr).toBe(0);
    const d = (JSON.parse(r.stdout) as { d: string }).d;
    // Control characters other than tab and newline are dropped; command substitution drops trailing newlines.
    const kept = [...input].filter((c) => c === '\t' || c === '\n' || c.charCodeAt(0) >= 0x20).join('');
    expect(d).toBe(kept.replace(/\n+$/, ''));
  });

  it('caps the text at 900 bytes', () => {
    const r = spawnSync('busybox', ['sh', '-c', `${fn}\nprintf '{"d":"%s"}' "$(json_str "$X")"\n`], { encoding: 'utf8', env: { X: 'x'.repeat(5000), PATH: process.env.PATH } });
    expect((JSON.parse(r.stdout) as { d: string }).d).toHaveLength(900);
  });
});
