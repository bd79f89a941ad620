/**
 * QEMU under TCG (this machine's /dev/kvm cannot run firmware): start a VM, serial console to a log
 * file kept as evidence under test-artifacts/, end it by PID on timeout.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const ARTIFACTS = resolve(import.meta.dirname, '../../test-artifacts');

export interface VmResult {
  code: number | null;
  timedOut: boolean;
  log: string;
  logPath: string;
}

export function runQemu(name: string, args: string[], opts: { timeoutMs?: number; until?: RegExp; prefix?: string[] } = {}): Promise<VmResult> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const logPath = join(ARTIFACTS, `${name}-${process.pid}.serial.log`);
  const base = ['-accel', 'tcg', '-nographic', '-monitor', 'none', '-serial', `file:${logPath}`, '-no-reboot', '-m', '512'];
  const cmd = [...(opts.prefix ?? []), 'qemu-system-x86_64', ...base, ...args];
  return new Promise((resolvePromise) => {
    const child = spawn(cmd[0]!, cmd.slice(1), { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => { stderr += d.toString(); });
    let timedOut = false;
    const kill = () => { try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* gone */ } };
    const timer = setTimeout(() => { timedOut = true; kill(); }, opts.timeoutMs ?? 120_000);
    const poll = opts.until ? setInterval(() => {
      if (existsSync(logPath) && opts.until!.test(readFileSync(logPath, 'utf8'))) kill();
    }, 250) : undefined;
    child.on('close', (code) => {
      clearTimeout(timer);
      if (poll) clearInterval(poll);
      const log = existsSync(logPath) ? readFileSync(logPath, 'utf8') : '';
      resolvePromise({ code, timedOut, log: stderr ? `${log}\n[qemu stderr] ${stderr}` : log, logPath });
    });
  });
}
