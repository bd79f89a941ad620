/**
 * rolecast power | boot-once | console, and `assign --reboot`: BMC power from the command line. Power
 * requests and results go into the machine's boot timeline (<data>/events.jsonl), so `rolecast events`
 * reads assign → power → DHCP → ... → booted. Exit codes: 0 done, 1 failed before any BMC call (unknown
 * machine, no bmc, profiles), 2 usage, 3 the BMC failed or did not answer (the message says which).
 */
import { spawn } from 'node:child_process';
import type { BmcConfig, ServerConfig } from '../config.js';
import { setBootOnce } from '../inventory/edit.js';
import type { Inventory, Machine } from '../inventory/types.js';
import { RolecastError } from '../errors.js';
import { BmcError, bmcLabel, seconds, type BmcTarget, type PowerOp } from '../bmc/types.js';
import { bmcTarget, PowerService, type PowerResult } from '../bmc/service.js';
import { IPMITOOL, solArgs } from '../bmc/ipmi.js';
import { classifySol, deactivateSol } from '../bmc/sol.js';
import { readConsoleFile } from '../bmc/consolelog.js';
import { screenText } from '../bmc/screen.js';
import { sessionsClosing } from '../bmc/redfish.js';
import { FLAGS, type CommandSpec, type FlagSpec, type Flags } from './spec.js';
import { findMachine, loadProfiles, NotFoundError, out, serverConfig, table, UsageError, withState, type Loaded } from './common.js';
import type { EventSink } from '../events/types.js';
import { untilServing } from './serving.js';
import { join } from 'node:path';

const OPS: readonly PowerOp[] = ['status', 'on', 'off', 'cycle', 'reset', 'pxe'];
export const EXIT_BMC = 3;

/**
 * The service with the config's caps (a --timeout flag overrides the deadline), writing its requests and
 * results into the site's state through openState — the data directory, or PostgreSQL with
 * state.backend postgres — where the running servers' timelines and event streams pick them up.
 */
async function withPower<T>(l: Loaded, flags: Flags, fn: (power: PowerService, events: EventSink) => Promise<T>): Promise<T> {
  const bmc = bmcConfig(l.cfg.bmc, flags);
  // Appends only: no timelines loaded, nothing followed.
  return withState(l, ['events', 'power'], async (s) => {
    const power = new PowerService({ policy: { timeoutMs: bmc.timeoutMs, attempts: bmc.attempts }, maxConcurrent: bmc.maxConcurrent, events: s.events, log: s.power });
    try { return await fn(power, s.events); } finally { await sessionsClosing(); }
  }, { loadEvents: false, follow: false });
}

export function bmcConfig(c: BmcConfig, flags: Flags): BmcConfig {
  const out = { ...c };
  if (typeof flags.timeout === 'string') {
    const s = Number(flags.timeout);
    if (!Number.isFinite(s) || s <= 0 || s > 600) throw new UsageError(`--timeout: "${flags.timeout}" is not a number of seconds (0-600)`);
    out.timeoutMs = Math.round(s * 1000);
  }
  if (!Number.isInteger(out.maxConcurrent) || out.maxConcurrent < 1) throw new UsageError(`bmc.maxConcurrent must be a positive integer (got ${out.maxConcurrent})`);
  if (!Number.isInteger(out.attempts) || out.attempts < 1 || out.attempts > 5) throw new UsageError(`bmc.attempts must be 1-5 (got ${out.attempts})`);
  if (!(out.timeoutMs >= 100)) throw new UsageError(`bmc.timeoutMs must be at least 100 (got ${out.timeoutMs})`);
  return out;
}

function row(r: PowerResult): string[] {
  return [r.host, r.op, r.ok ? 'ok' : 'FAILED', r.state ?? '-', `${(r.ms / 1000).toFixed(1)}s`, r.ok ? r.detail ?? '' : `${r.code}: ${r.error}`];
}

function report(results: PowerResult[], flags: Flags): number {
  if (flags.json) out(JSON.stringify(results.length === 1 ? results[0] : results, null, 2));
  else out(table([['HOST', 'OP', 'RESULT', 'STATE', 'TIME', 'DETAIL'], ...results.map(row)]));
  const failed = results.filter((r) => !r.ok);
  for (const f of failed) if (!flags.json) process.stderr.write(`rolecast power: ${f.host}: ${f.error}\n`);
  if (failed.some((f) => f.code === 'E_NO_BMC') && failed.every((f) => f.code === 'E_NO_BMC')) return 1;
  return failed.length ? EXIT_BMC : 0;
}

export async function cmdPower(args: string[], flags: Flags): Promise<number> {
  const loaded = await serverConfig(flags);
  const { cfg } = loaded;
  const inv = await loadProfiles(loaded);
  if (flags.all) {
    const [op = 'status', ...extra] = args;
    if (op !== 'status' || extra.length) throw new UsageError('power --all takes only status (switching every machine at once is not offered)');
    const machines = inv.machines.filter((m) => m.bmc);
    if (machines.length === 0) throw new UsageError(`no machine in ${cfg.profilesDir} has a bmc`);
    return withPower(loaded, flags, async (power) => report(await power.statusAll(inv, machines, 'cli'), flags));
  }
  const [host, op] = args;
  if (!host || !op || args.length > 2) throw new UsageError(`power needs <host> ${OPS.join('|')}, or --all status`);
  if (!(OPS as readonly string[]).includes(op)) throw new UsageError(`power: "${op}" is not one of ${OPS.join(', ')}`);
  const m = findMachine(inv, host);
  return withPower(loaded, flags, async (power) => report([await power.run(inv, m, op as PowerOp, 'cli')], flags));
}

/**
 * After a profile edit: once the running server serves it (serving.ts), next boot from the network,
 * then on or cycle (PowerService.rebootToNetwork).
 */
export async function rebootAfterEdit(l: Loaded, flags: Flags, host: string, what: string): Promise<number> {
  const inv = await loadProfiles(l);
  const m = findMachine(inv, host);
  if (!m.bmc) throw new BmcError('no-bmc', `${host}: ${what} saved, but it has no bmc to reboot it with (${m.source.file}:${m.source.line})`);
  await untilServing(l, inv);
  return withPower(l, flags, async (power, events) => {
    events.emit({ mac: m.macs[0]!, host: m.host, stage: 'assign', detail: what });
    return report(await power.rebootToNetwork(inv, m, 'cli'), flags);
  });
}

export async function cmdBootOnce(args: string[], flags: Flags): Promise<number> {
  const [host, target] = args;
  if (!host || !target || args.length > 2) throw new UsageError('boot-once needs <host> <target>');
  const loaded = await serverConfig(flags);
  const m = findMachine(await loadProfiles(loaded), host);
  await withState(loaded, ['profiles'], (s) => setBootOnce(s.profiles, m.host, target, { who: 'rolecast boot-once' }));
  if (!flags.reboot) {
    out(`${m.host}: boots ${target} once on its next boot, then its role again`);
    return 0;
  }
  return rebootAfterEdit(loaded, flags, m.host, `boot_once ${target}`);
}

/**
 * rolecast console <host>: Serial over LAN through ipmitool, attached to this terminal (~. ends it).
 * ipmitool reads the terminal itself (raw mode); its output passes through here so that the session's
 * setup is held to the BMC deadline like any other call: a dead BMC fails with E_BMC_TIMEOUT (exit 3)
 * instead of ipmitool's own retries. `--log` prints the last recorded boot console instead.
 */
export async function cmdConsole(args: string[], flags: Flags): Promise<number> {
  const [host] = args;
  if (!host || args.length > 1) throw new UsageError('console needs <host>');
  const loaded = await serverConfig(flags);
  const inv: Inventory = await loadProfiles(loaded);
  const m: Machine = findMachine(inv, host);
  if (flags.log) return printConsoleLog(loaded.cfg, m.host, flags);
  const t = bmcTarget(inv, m);
  if (t.type !== 'ipmi') throw new RolecastError('E_USAGE', `${m.host}: console needs an IPMI BMC (Serial over LAN); Redfish has no standard one, and this BMC is ${t.type}`);
  const { timeoutMs } = bmcConfig(loaded.cfg.bmc, flags);
  if (flags.force) await deactivateSol(t, AbortSignal.timeout(timeoutMs));
  return attachConsole(t, timeoutMs, m.host);
}

function attachConsole(t: BmcTarget, timeoutMs: number, host: string): Promise<number> {
  const label = bmcLabel(t);
  // stdbuf: ipmitool's "operational" line would otherwise sit in its pipe buffer (src/bmc/sol.ts).
  const child = spawn('stdbuf', ['-oL', IPMITOOL, ...solArgs(t)], { stdio: ['inherit', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '/usr/bin:/bin', IPMI_PASSWORD: t.password } });
  let up = false;
  let head = '';
  let errText = '';
  let timedOut = false;
  // The deadline covers freeing the payload too: the activation gets all but the last quarter (at most 1 s).
  const reserve = Math.min(1000, Math.floor(timeoutMs / 4));
  const timer = setTimeout(() => { if (!up) { timedOut = true; child.kill('SIGKILL'); } }, timeoutMs - reserve);
  const free = () => deactivateSol(t, AbortSignal.timeout(reserve)).catch(() => undefined);
  child.stdout.on('data', (d: Buffer) => {
    if (!up) {
      head += d.toString('latin1');
      up = head.includes('[SOL Session operational');
      if (up) clearTimeout(timer);
    }
    process.stdout.write(d);
  });
  child.stderr.on('data', (d: Buffer) => {
    if (up) process.stderr.write(d);
    else errText += d.toString();
  });
  return new Promise((resolve, reject) => {
    child.on('error', (err) => { clearTimeout(timer); reject(new BmcError('protocol', `cannot run ${IPMITOOL}: ${err.message} (install Debian's ipmitool)`)); });
    child.on('close', (code) => {
      clearTimeout(timer);
      if (up) return resolve(code === 0 ? 0 : EXIT_BMC);
      // A killed activation may hold the payload on the BMC: free it (a dead BMC just does not answer).
      if (timedOut) return void free().then(() => reject(new BmcError('timeout', `BMC ${label} did not answer in ${seconds(timeoutMs)}`)));
      const e = classifySol(label, code, head, errText);
      reject(e.failure === 'busy' ? new BmcError('busy', `${e.message}; rolecast serve may be recording its boot (rolecast console ${host} --log shows it), and --force takes the console over`) : e);
    });
  });
}

async function printConsoleLog(cfg: ServerConfig, host: string, flags: Flags): Promise<number> {
  const log = await readConsoleFile(join(cfg.dataDir, 'console'), host);
  if (!log) throw new NotFoundError(`no console log for ${host} in ${join(cfg.dataDir, 'console')}: none of its boots was recorded by rolecast serve (it needs an IPMI bmc)`);
  if (flags.raw) process.stdout.write(log.bytes);
  else out(screenText(log.bytes.toString('utf8')).replace(/\n+$/, ''));
  return 0;
}

const P = { profiles: FLAGS.profiles, config: FLAGS.config, data: FLAGS.data };
const TIMEOUT: FlagSpec = { value: 'SECONDS', help: 'deadline for each BMC call, retries included (default: the config\'s bmc.timeoutMs, 10 s)' };
/** `--reboot` for commands that edit the profiles and may then reboot the machine. */
export const REBOOT_FLAGS: Record<string, FlagSpec> = {
  reboot: { help: 'then reboot it from the network through its BMC: next boot PXE once, then power cycle (or on, if it is off)' },
  data: FLAGS.data, timeout: TIMEOUT,
};

export const powerCommand: CommandSpec = {
  name: 'power', summary: 'BMC power: status, on, off, cycle, reset, pxe (IPMI or Redfish)', args: '<host|mac> status|on|off|cycle|reset|pxe', minArgs: 1, maxArgs: 2, run: cmdPower,
  flags: { ...P, json: FLAGS.json, timeout: TIMEOUT, all: { help: 'every machine with a bmc (status only), concurrently within the caps' } },
  description: 'Talk to the machine\'s BMC (bmc: in machines.yaml; the password is a secret in secrets.yaml). Every call has a deadline and at most one retry, at most bmc.maxConcurrent calls run at once and one at a time per BMC. A failure says what happened and exits 3; a state is printed only when the BMC reported it. Requests and results join the machine\'s boot timeline (rolecast events).',
  examples: ['rolecast power w106 status', 'rolecast power w106 cycle --json', 'rolecast power --all status', 'rolecast power w106 pxe && rolecast power w106 cycle'],
};

export const bootOnceCommand: CommandSpec = {
  name: 'boot-once', summary: 'boot a maintenance target once, then the machine\'s role again', args: '<host|mac> <target>', minArgs: 2, maxArgs: 2, run: cmdBootOnce,
  flags: { ...P, ...REBOOT_FLAGS, json: FLAGS.json },
  examples: ['rolecast boot-once w104 memtest', 'rolecast boot-once w104 wipe --reboot'],
};

export const consoleCommand: CommandSpec = {
  name: 'console', summary: 'Serial over LAN through the machine\'s IPMI BMC (ipmitool sol activate; ~. ends it)', args: '<host|mac>', minArgs: 1, maxArgs: 1, run: cmdConsole,
  flags: {
    profiles: FLAGS.profiles, config: FLAGS.config, data: FLAGS.data, timeout: TIMEOUT,
    log: { help: 'print the console log of its last recorded boot (kept by rolecast serve) instead of attaching' },
    raw: { help: 'with --log: the bytes as recorded, terminal control included' },
    force: { help: 'end the Serial over LAN session someone else holds (sol deactivate) before attaching' },
  },
  description: 'Attach this terminal to the machine\'s serial console through its IPMI BMC (Redfish has no standard Serial over LAN). Type ~. at the start of a line to end it. Setting the session up is held to the BMC deadline (--timeout, bmc.timeoutMs): a BMC that does not answer fails with exit 3. rolecast serve records each boot\'s console while it runs (bmc.console); --log prints the last one.',
  examples: ['rolecast console w106', 'rolecast console w106 --log', 'rolecast console w106 --force --timeout 5'],
};
