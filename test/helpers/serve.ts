/**
 * `rolecast serve --config FILE` inside a lab namespace, for the e2e files: its output goes to a log
 * file kept as evidence (written as it grows, so a run that dies still leaves it) and to `onText`;
 * resolves once it says "rolecast serving", or throws with the log if it exits first.
 */
import { appendFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { waitFor, type Lab } from './netns.js';

const ROOT = resolve(import.meta.dirname, '../..');

export async function startServe(lab: Lab, ns: string, cfgFile: string, logPath: string, onText: (text: string) => void): Promise<ChildProcess> {
  writeFileSync(logPath, '');
  let text = '';
  const proc = lab.spawn(ns, 'node', ['--import', 'tsx', join(ROOT, 'src/cli.ts'), 'serve', '--config', cfgFile], { cwd: ROOT });
  const keep = (d: Buffer) => { const t = d.toString(); text += t; onText(t); appendFileSync(logPath, d); };
  proc.stdout?.on('data', keep);
  proc.stderr?.on('data', keep);
  await waitFor(() => text.includes('rolecast serving') || proc.exitCode !== null, 30_000);
  if (!text.includes('rolecast serving')) throw new Error(`rolecast did not start (log: ${logPath}):\n${text}`);
  return proc;
}
