/**
 * Serial over LAN for recording: `ipmitool sol activate` as a subprocess whose output is the
 * machine's serial console. Facts this relies on (checked against OpenIPMI's ipmi_sim and ipmitool
 * 1.8.19, and what IPMI 2.0 §15 allows):
 * - stdin must stay open: ipmitool ends the session when its stdin reads EOF, so it gets a pipe that
 *   is never written to — except to end it with its escape "~." (at the start of a line, which it is:
 *   nothing else is ever typed), so the BMC frees the payload at once. A killed ipmitool leaves the
 *   SOL payload active on the BMC until the session times out, and nobody can attach meanwhile: kill
 *   is only the last resort, followed by `sol deactivate`.
 * - one SOL payload instance per BMC: a second activation is refused with "SOL payload already active
 *   on another session" (an operator's console, another server); that is reported as busy, never
 *   taken over.
 * - the SOL session is its own IPMI session: power commands keep working beside it.
 * - the "[SOL Session operational" line is ipmitool's, not the machine's: everything after it is.
 *   ipmitool prints it with stdio, which a pipe buffers fully: until the machine prints something the
 *   line would sit in ipmitool's buffer, so it runs under coreutils' `stdbuf -oL`.
 * - an activation that times out may have reached the BMC: ipmitool is killed, and the payload it may
 *   hold is deactivated, or the BMC would refuse every console until its session timed out.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { classifyIpmitool, IPMITOOL, ipmitoolArgs, solArgs } from './ipmi.js';
import { BmcError, bmcLabel, type BmcTarget } from './types.js';

const OPERATIONAL = '[SOL Session operational';
/** How long "~." may take to end ipmitool before it is killed. */
const STOP_GRACE_MS = 3000;

export interface SolSession {
  /** Resolves when ipmitool has ended, whoever ended it: the code, and its last words when it failed. */
  readonly ended: Promise<{ code: number | null; error?: string }>;
  /** End the session with ipmitool's escape; kill it (and deactivate the payload) if that does not work. */
  stop(): Promise<void>;
}

function env(t: BmcTarget): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', IPMI_PASSWORD: t.password };
}

/** What ipmitool said when the activation failed, as a BMC error. */
export function classifySol(bmc: string, code: number | null, stdout: string, stderr: string): BmcError {
  if (/payload already active/i.test(`${stderr}\n${stdout}`)) {
    return new BmcError('busy', `BMC ${bmc}: Serial over LAN is in use by another session (an operator's console, or another server recording it)`);
  }
  return classifyIpmitool(bmc, { code, stdout, stderr });
}

/**
 * Activate SOL and hand every byte the machine prints to `onData`. Resolves once ipmitool says the
 * session is operational; rejects with a BmcError when it cannot be set up, or when `signal` aborts
 * first (the caller's deadline).
 */
export function activateSol(t: BmcTarget, onData: (chunk: Buffer) => void, signal: AbortSignal): Promise<SolSession> {
  const bmc = bmcLabel(t);
  const child: ChildProcessWithoutNullStreams = spawn('stdbuf', ['-oL', IPMITOOL, ...solArgs(t)], { stdio: ['pipe', 'pipe', 'pipe'], env: env(t) });
  let operational = false;
  /** Set once "~." is sent: what ipmitool prints then ("[terminated ipmitool]") is not the machine's. */
  const muted = { on: false };
  let head = '';
  let stderr = '';
  const ended = new Promise<{ code: number | null; error?: string }>((resolve) => {
    child.on('close', (code) => resolve({ code, ...(code === 0 ? {} : { error: lastLine(stderr) ?? `ipmitool exit ${code}` }) }));
    child.on('error', (err) => resolve({ code: null, error: `cannot run ${IPMITOOL}: ${err.message}` }));
  });
  child.stdin.on('error', () => { /* ipmitool gone: its close event says so */ });
  child.stderr.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-4096); });
  return new Promise<SolSession>((resolve, reject) => {
    const abort = () => {
      child.kill('SIGKILL');
      reject(new BmcError('timeout', `BMC ${bmc}: Serial over LAN did not start in time`));
      void ended.then(() => deactivateSol(t, AbortSignal.timeout(STOP_GRACE_MS))).catch(() => undefined);
    };
    signal.addEventListener('abort', abort, { once: true });
    child.stdout.on('data', (d: Buffer) => {
      if (operational) { if (!muted.on) onData(d); return; }
      head += d.toString('latin1');
      const at = head.indexOf(OPERATIONAL);
      if (at < 0) { head = head.slice(-4096); return; }
      const eol = head.indexOf('\n', at);
      if (eol < 0) return;
      operational = true;
      signal.removeEventListener('abort', abort);
      const rest = Buffer.from(head.slice(eol + 1), 'latin1');
      head = '';
      if (rest.length) onData(rest);
      resolve({ ended, stop: () => { muted.on = true; return stopSol(t, child, ended); } });
    });
    void ended.then(({ code, error }) => {
      if (operational) return;
      signal.removeEventListener('abort', abort);
      reject(error?.startsWith('cannot run') ? new BmcError('protocol', `${error} (install Debian's ipmitool)`) : classifySol(bmc, code, head, stderr));
    });
  });
}

async function stopSol(t: BmcTarget, child: ChildProcessWithoutNullStreams, ended: Promise<unknown>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.stdin.write('~.');
  const gone = await Promise.race([ended.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), STOP_GRACE_MS).unref())]);
  if (gone) return;
  child.kill('SIGKILL');
  await ended;
  await deactivateSol(t, AbortSignal.timeout(STOP_GRACE_MS)).catch(() => undefined);
}

/** `ipmitool sol deactivate`: frees a payload left active (a killed client, `rolecast console --force`). */
export function deactivateSol(t: BmcTarget, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(IPMITOOL, [...ipmitoolArgs(t).filter((a) => a !== '-v'), 'sol', 'deactivate'], { stdio: ['ignore', 'pipe', 'pipe'], env: env(t) });
    let out = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { out += d.toString(); });
    const abort = () => child.kill('SIGKILL');
    signal.addEventListener('abort', abort, { once: true });
    child.on('error', reject);
    child.on('close', (code) => {
      signal.removeEventListener('abort', abort);
      // "already de-activated" is what we wanted too.
      if (code === 0 || /already de-?activated|not active/i.test(out)) resolve();
      else reject(signal.aborted ? new BmcError('timeout', `BMC ${bmcLabel(t)}: sol deactivate did not answer`) : classifyIpmitool(bmcLabel(t), { code, stdout: out, stderr: '' }));
    });
  });
}

function lastLine(text: string): string | undefined {
  return text.split('\n').map((l) => l.trim()).filter((l) => l && !/^tcgetattr|^Info: SOL parameter/.test(l)).at(-1);
}
