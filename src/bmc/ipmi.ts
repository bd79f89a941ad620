/**
 * IPMI through Debian's ipmitool (lanplus, RMCP+) as a subprocess, as Ironic, Warewulf and Foreman do:
 * npm has no maintained IPMI library. The password reaches ipmitool through IPMI_PASSWORD (-E), never
 * the command line, so it is not in `ps` or in any log. Cipher suite 3 (RAKP-HMAC-SHA1, AES-CBC-128) is
 * asked for explicitly: it is the suite IPMI 2.0 BMCs support most widely, and without -C ipmitool
 * first probes for suite 17, which some BMCs (OpenIPMI's ipmi_sim among them) never answer, costing
 * ~10 s per call.
 */
import { spawn } from 'node:child_process';
import { BmcError, bmcLabel, type BmcTarget, type PowerDriver, type PowerReading } from './types.js';

export const IPMITOOL = process.env.ROLECAST_IPMITOOL ?? 'ipmitool';

/** The ipmitool arguments for a target, without the command. */
export function ipmitoolArgs(t: BmcTarget): string[] {
  return ['-I', 'lanplus', '-C', '3', '-H', t.host, ...(t.port ? ['-p', String(t.port)] : []), '-U', t.user, '-E', '-v'];
}

interface Run { code: number | null; stdout: string; stderr: string }

function runIpmitool(t: BmcTarget, cmd: string[], signal: AbortSignal): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(IPMITOOL, [...ipmitoolArgs(t), ...cmd], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', IPMI_PASSWORD: t.password },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const abort = () => child.kill('SIGKILL');
    signal.addEventListener('abort', abort, { once: true });
    child.on('error', (err) => {
      signal.removeEventListener('abort', abort);
      reject(new BmcError('protocol', `cannot run ${IPMITOOL}: ${err.message} (install Debian's ipmitool)`, false, { cause: err }));
    });
    child.on('close', (code) => {
      signal.removeEventListener('abort', abort);
      resolve({ code, stdout, stderr });
    });
  });
}

/**
 * Lines -v prints on every run, failed or not: ipmitool's OEM probe ("Get VSO Capabilities" answered
 * "Invalid command" by most BMCs) must not be mistaken for the failure.
 */
const VERBOSE_NOISE = /^(Loading IANA|Running Get VSO Capabilities|Invalid completion code received: Invalid command|Discovered IPMB address)/;

/**
 * What a failed ipmitool run means, from its own words (-v adds the RAKP detail). Session setup
 * failures are retryable: no command reached the BMC.
 */
export function classifyIpmitool(bmc: string, r: Run): BmcError {
  const text = `${r.stderr}\n${r.stdout}`;
  const last = text.split('\n').map((l) => l.trim()).filter((l) => l && !VERBOSE_NOISE.test(l)).at(-1) ?? `exit ${r.code}`;
  if (/RAKP 2 HMAC is invalid|unauthorized name|invalid user name|Invalid (user|password)/i.test(text)) {
    return new BmcError('auth', `BMC ${bmc}: authentication refused (check the user and its secret)`);
  }
  if (/Could not open socket|Unable to resolve|Name or service not known|Network is unreachable|No route to host|Connection refused/i.test(text)) {
    return new BmcError('unreachable', `BMC ${bmc} unreachable: ${last}`, true);
  }
  if (/Unable to establish IPMI v2|Insufficient resources for session|out of free sessions/i.test(text)) {
    return new BmcError('unreachable', `BMC ${bmc}: no IPMI session (${last})`, true);
  }
  if (/not supported in present state|Command not supported|Node busy|Insufficient privilege/i.test(text)) {
    return new BmcError('refused', `BMC ${bmc} refused the command: ${last}`);
  }
  return new BmcError('protocol', `BMC ${bmc}: ipmitool failed: ${last}`);
}

export class IpmiDriver implements PowerDriver {
  private readonly label: string;
  constructor(private readonly t: BmcTarget) { this.label = bmcLabel(t); }

  private async run(cmd: string[], signal: AbortSignal): Promise<string> {
    const r = await runIpmitool(this.t, cmd, signal);
    if (signal.aborted) throw new BmcError('timeout', `BMC ${this.label}: aborted`);
    if (r.code !== 0) throw classifyIpmitool(this.label, r);
    return r.stdout;
  }

  async status(signal: AbortSignal): Promise<PowerReading> {
    const out = await this.run(['power', 'status'], signal);
    const m = /Chassis Power is (on|off)/i.exec(out);
    if (!m) throw new BmcError('protocol', `BMC ${this.label}: unexpected power status answer: ${out.trim().slice(0, 200) || '(empty)'}`);
    return { state: m[1]!.toLowerCase() as 'on' | 'off', detail: m[0] };
  }

  async on(signal: AbortSignal): Promise<void> { await this.control('on', /Up\/On/, signal); }
  async off(signal: AbortSignal): Promise<void> { await this.control('off', /Down\/Off/, signal); }
  async cycle(signal: AbortSignal): Promise<void> { await this.control('cycle', /Cycle/, signal); }
  async reset(signal: AbortSignal): Promise<void> { await this.control('reset', /Reset/, signal); }

  /** `chassis bootdev pxe` without options=persistent sets the IPMI boot flags valid for the next boot only. */
  async pxeOnce(signal: AbortSignal): Promise<void> {
    const out = await this.run(['chassis', 'bootdev', 'pxe'], signal);
    if (!/Set Boot Device to pxe/i.test(out)) throw new BmcError('protocol', `BMC ${this.label}: unexpected bootdev answer: ${out.trim().slice(0, 200)}`);
  }

  private async control(what: string, ok: RegExp, signal: AbortSignal): Promise<void> {
    const out = await this.run(['power', what], signal);
    if (!ok.test(out)) throw new BmcError('protocol', `BMC ${this.label}: unexpected answer to power ${what}: ${out.trim().slice(0, 200)}`);
  }
}

/** Arguments for `ipmitool sol activate` (the console); the caller sets IPMI_PASSWORD. */
export function solArgs(t: BmcTarget): string[] {
  return [...ipmitoolArgs(t).filter((a) => a !== '-v'), 'sol', 'activate'];
}
