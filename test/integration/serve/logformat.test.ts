/**
 * Logs: readable lines (pino-pretty) when rolecast runs on a terminal, JSON lines otherwise (journald, pipes).
 * The terminal is a real pseudo-terminal from script(1); the server listens on 127.0.0.1 only.
 */
import { afterAll, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const ROOT = resolve(import.meta.dirname, '../../..');
const dir = mkdtempSync(join(tmpdir(), 'rolecast-log-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const cfg = join(dir, 'rc.yaml');
writeFileSync(cfg, `profilesDir: ${join(ROOT, 'test/fixtures/profiles')}\ndataDir: ${join(dir, 'data')}\nimagesDir: ${join(dir, 'images')}\naddress: 127.0.0.1\ndhcp:\n  mode: 'off'\ntftp:\n  enabled: false\nhttp:\n  host: 127.0.0.1\n  port: 0\n`);
const cmd = [process.execPath, '--import', pathToFileURL(join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href, join(ROOT, 'src/cli.ts'), 'serve', '--config', cfg];

/** Run serve until it logs that it serves, then SIGTERM it; the output so far. */
function runUntilServing(argv: string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  return new Promise((done, fail) => {
    const p = spawn(argv[0]!, argv.slice(1), { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    const timer = setTimeout(() => { p.kill('SIGKILL'); fail(new Error(`no "rolecast serving" in 40 s:\n${out}`)); }, 40_000);
    const on = (d: Buffer) => {
      out += d.toString();
      if (/rolecast serving/.test(out)) p.kill('SIGTERM');
    };
    p.stdout.on('data', on);
    p.stderr.on('data', on);
    p.on('close', () => { clearTimeout(timer); done(out); });
  });
}

it('JSON lines when stdout is not a terminal', async () => {
  const out = await runUntilServing(cmd, { ROLECAST_LOG_FORMAT: '' });
  const line = out.split('\n').find((l) => l.includes('rolecast serving'))!;
  expect(JSON.parse(line)).toMatchObject({ level: 30, msg: 'rolecast serving', name: 'rolecast' });
}, 60_000);

it('pino-pretty lines on a terminal', async () => {
  // script -q -e -c CMD /dev/null: CMD on a fresh pseudo-terminal, its exit status passed through.
  const out = await runUntilServing(['script', '-qec', cmd.map((a) => `'${a}'`).join(' '), '/dev/null'], { ROLECAST_LOG_FORMAT: '' });
  const line = out.split('\n').find((l) => l.includes('rolecast serving'))!;
  expect(line).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] .*INFO.*: .*rolecast serving/);
  expect(out).not.toMatch(/^\{"level"/m);
}, 60_000);
