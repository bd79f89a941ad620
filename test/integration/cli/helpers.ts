import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

export const ROOT = resolve(import.meta.dirname, '../../..');
/** tsx by path, so the command runs from any working directory. */
const TSX = pathToFileURL(join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href;

export interface CliResult { code: number | null; stdout: string; stderr: string }

/** Run the real rolecast command (TypeScript sources through tsx, so no build is needed). */
export function rolecast(args: string[], cwd = ROOT, env: NodeJS.ProcessEnv = {}): CliResult {
  const r = spawnSync(process.execPath, ['--import', TSX, join(ROOT, 'src/cli.ts'), ...args], { cwd, encoding: 'utf8', timeout: 60_000, env: { ...process.env, ROLECAST_CONFIG: '', ...env } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A private copy of the bundled profiles (and a data dir) for tests that edit them. */
export function copyProfiles(): { dir: string; profiles: string; data: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'rolecast-cli-'));
  const profiles = join(dir, 'profiles');
  cpSync(join(ROOT, 'test/fixtures/profiles'), profiles, { recursive: true });
  return { dir, profiles, data: join(dir, 'data'), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** The bundled example profiles, named explicitly (rolecast's defaults are /etc/rolecast and /var/lib/rolecast). */
export const BUNDLED = ['--profiles', join(ROOT, 'test/fixtures/profiles')];

/**
 * The same command in this process (help and usage errors: no need to pay for a Node start each time).
 * stdout and stderr are captured for the call.
 */
export async function rolecastHere(args: string[]): Promise<CliResult> {
  const { main } = await import('../../../src/cli.js');
  const out: string[] = [];
  const err: string[] = [];
  const [o, e] = [process.stdout.write.bind(process.stdout), process.stderr.write.bind(process.stderr)];
  process.stdout.write = ((c: string | Uint8Array) => { out.push(String(c)); return true; }) as typeof process.stdout.write;
  process.stderr.write = ((c: string | Uint8Array) => { err.push(String(c)); return true; }) as typeof process.stderr.write;
  try {
    const code = await main(args);
    return { code, stdout: out.join(''), stderr: err.join('') };
  } finally {
    process.stdout.write = o;
    process.stderr.write = e;
  }
}
