/**
 * Console recording during a boot: when a machine with an IPMI BMC starts booting — rolecast (or the
 * CLI, or another operator through rolecast) switched it on, cycled or reset it, or its firmware sent
 * a PXE DHCPDISCOVER — the server attaches to its Serial over LAN and keeps the console in a bounded
 * per-machine log (consolelog.ts). The boot's end stops it: `booted`; `failed`, no end within the
 * timeout, or the firmware DHCPing again after the kernel went out (a panic, a watchdog reset) put the
 * last screen into the timeline as a `console` event, so a failed boot says what it printed last.
 * Redfish has no standard Serial over LAN: Redfish machines are not recorded.
 *
 * Activation is a BMC call like any other (one at a time per BMC, within the global cap); the SOL
 * session it opens is not: it holds its own IPMI session for the boot's length without holding the
 * BMC's turn or a call slot, so power calls keep working beside it (IPMI 2.0 allows both at once).
 * Recordings are capped separately (`maxSessions`): beyond it a boot is not recorded, and the log says so.
 */
import type { BootEvent } from '../events/types.js';
import type { Inventory, Machine } from '../inventory/types.js';
import type { Logger } from '../log.js';
import type { EventLog } from '../state/types.js';
import { callWithDeadline, type CallPolicy } from './call.js';
import type { ConsoleLog, ConsoleLogStore } from './consolelog.js';
import type { BmcLimiter } from './limit.js';
import { lastScreen } from './screen.js';
import { bmcTarget, powerDoneOp } from './service.js';
import { activateSol, type SolSession } from './sol.js';
import { bmcLabel, seconds, type BmcTarget } from './types.js';

export interface ConsoleRecordConfig {
  /** boot: power actions and PXE DHCP start a recording; power: power actions only; off: never. */
  record: 'boot' | 'power' | 'off';
  /** A boot with no booted or failed within this long ends the recording, its last screen kept (ms). */
  timeoutMs: number;
  /** Lines of the last screen a `console` event carries. */
  lines: number;
  /** Cap on each machine's console log (bytes; the newest are kept). */
  maxBytes: number;
  /** Recordings at once, across all machines. */
  maxSessions: number;
  /** After booted or failed, keep reading this long: the console lags the phone-home (ms). */
  settleMs: number;
}

export interface ConsoleRecorderDeps {
  getInventory: () => Inventory;
  events: Pick<EventLog, 'emit' | 'subscribe'>;
  limiter: BmcLimiter;
  policy: CallPolicy;
  logs: ConsoleLogStore;
  config: ConsoleRecordConfig;
  logger: Logger;
}

type Outcome = 'booted' | 'failed' | 'timeout' | 'rebooted' | 'off' | 'replaced' | 'closed';

/** Stages that mean the boot got past its firmware: a PXE DHCPDISCOVER after one is a new boot. */
const PAST_FIRMWARE: ReadonlySet<string> = new Set(['http-kernel', 'http-initrd', 'tftp-file', 'initramfs']);
/** Outcomes whose last screen goes into the timeline. */
const KEEP_SCREEN: ReadonlySet<Outcome> = new Set(['failed', 'timeout', 'rebooted']);

interface Recording {
  host: string;
  mac: string;
  why: string;
  /** The log file is opened after the recording is claimed (so a second event for the host sees it). */
  log: Promise<ConsoleLog>;
  timer: NodeJS.Timeout;
  session?: SolSession;
  /** Why SOL is not (or no longer) attached, for the console event. */
  problem?: string;
  /** The machine fetched its kernel (or reported from the initramfs) during this recording. */
  pastFirmware?: boolean;
}

export class ConsoleRecorder {
  private readonly recs = new Map<string, Recording>();
  /** Recordings being wound up, by host: a new one for the same host starts after it. */
  private readonly ending = new Map<string, Promise<void>>();
  private unsubscribe: (() => void) | undefined;

  constructor(private readonly d: ConsoleRecorderDeps) {
    checkConsoleConfig(d.config);
  }

  start(): void {
    if (this.d.config.record === 'off') return;
    this.unsubscribe = this.d.events.subscribe((e) => this.onEvent(e));
  }

  recording(host: string): boolean {
    return this.recs.has(host);
  }

  get active(): number {
    return this.recs.size;
  }

  private onEvent(e: BootEvent): void {
    const inv = this.d.getInventory();
    const m = (e.host ? inv.byHost.get(e.host) : undefined) ?? inv.byMac.get(e.mac);
    if (!m || m.bmc?.type !== 'ipmi') return;
    if (e.stage === 'booted' || e.stage === 'failed') {
      // A phone-home may reach another server of the site: the boot ended all the same.
      void this.finish(m.host, e.stage, e.detail, e.mac);
      return;
    }
    const rec = this.recs.get(m.host);
    if (rec && PAST_FIRMWARE.has(e.stage)) rec.pastFirmware = true;
    if (e.server !== undefined) return; // another server's action or DHCP: that server records it
    if (e.stage === 'power-request' && /^off\b/.test(e.detail ?? '')) {
      // Let go of SOL before the power goes: a session left on a dead serial port can keep some
      // BMCs (ipmi_sim among them) from reattaching it promptly on the next boot.
      void this.finish(m.host, 'off');
    } else if (e.stage === 'power-done') {
      const op = powerDoneOp(e.detail);
      if (op === 'off') void this.finish(m.host, 'off');
      else if (op === 'on' || op === 'cycle' || op === 'reset') void this.begin(inv, m, `power ${op}`);
    } else if (e.stage === 'dhcp-discover' && this.d.config.record === 'boot' && /^PXEClient/.test(e.detail ?? '')) {
      // Firmware DHCP: a boot starts — or starts again after a panic or a watchdog reset, when this
      // recording already saw the kernel go out (that boot never reported booted: keep its screen).
      if (!rec) void this.begin(inv, m, 'PXE DHCP', e.mac);
      else if (rec.pastFirmware) void this.begin(inv, m, 'PXE DHCP', e.mac, 'rebooted');
    }
  }

  /** Start recording a boot of `m` (a recording already running for it ends first: a new boot began). */
  async begin(inv: Inventory, m: Machine, why: string, mac = m.macs[0]!, previous: Outcome = 'replaced'): Promise<void> {
    const log = this.d.logger.child({ host: m.host, component: 'console' });
    if (this.recs.has(m.host)) await this.finish(m.host, previous);
    await this.ending.get(m.host);
    if (this.recs.has(m.host)) return; // another event began one meanwhile
    if (this.recs.size >= this.d.config.maxSessions) {
      log.warn({ cap: this.d.config.maxSessions }, 'boot console not recorded: as many recordings as bmc.console.maxSessions are running');
      return;
    }
    let t: BmcTarget;
    try {
      t = bmcTarget(inv, m);
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'boot console not recorded');
      return;
    }
    const rec: Recording = { host: m.host, mac, why, log: this.d.logs.begin(m.host), timer: setTimeout(() => void this.finish(m.host, 'timeout'), this.d.config.timeoutMs).unref() };
    this.recs.set(m.host, rec);
    try {
      rec.session = await this.attach(t, await rec.log);
    } catch (err) {
      rec.problem = `Serial over LAN not attached: ${(err as Error).message}`;
      log.warn({ err: (err as Error).message }, 'boot console not recorded');
      return;
    }
    if (this.recs.get(m.host) !== rec) { await rec.session.stop(); return; } // ended while attaching
    log.info({ why, bmc: bmcLabel(t) }, 'recording the boot console (Serial over LAN)');
    void rec.session.ended.then(({ error }) => {
      if (this.recs.get(m.host) === rec && !rec.problem) {
        rec.problem = `Serial over LAN ended during the boot${error ? `: ${error}` : ''}`;
        log.info({ error }, 'Serial over LAN ended before the boot did');
      }
    });
  }

  /** Activation under the caps: the BMC's turn and a call slot until ipmitool says it is operational. */
  private attach(t: BmcTarget, log: ConsoleLog): Promise<SolSession> {
    const label = bmcLabel(t);
    const { timeoutMs } = this.d.policy;
    const deadline = Date.now() + timeoutMs;
    return this.d.limiter.run(label, deadline, timeoutMs, () => callWithDeadline(label, this.d.policy, deadline, (signal) => activateSol(t, (c) => log.append(c), signal)));
  }

  /** End the recording of `host`; a failed boot or a timeout leaves its last screen in the timeline. */
  finish(host: string, outcome: Outcome, detail?: string, mac?: string): Promise<void> {
    const rec = this.recs.get(host);
    if (!rec) return this.ending.get(host) ?? Promise.resolve();
    this.recs.delete(host);
    clearTimeout(rec.timer);
    const done = this.windUp(rec, outcome, detail, mac).catch((err: unknown) => {
      this.d.logger.error({ err, host }, 'boot console recording did not end cleanly');
    }).finally(() => {
      if (this.ending.get(host) === done) this.ending.delete(host);
    });
    this.ending.set(host, done);
    return done;
  }

  private async windUp(rec: Recording, outcome: Outcome, detail: string | undefined, mac: string | undefined): Promise<void> {
    if ((outcome === 'booted' || outcome === 'failed') && rec.session) await sleep(this.d.config.settleMs);
    await rec.session?.stop().catch(() => undefined);
    const log = await rec.log;
    await this.d.logs.end(rec.host, log);
    this.d.logger.info({ host: rec.host, outcome, bytes: log.bytes().length }, 'boot console recording ended');
    if (!KEEP_SCREEN.has(outcome)) return;
    const head = outcome === 'failed' ? `boot failed${detail ? ` (${detail.slice(0, 200)})` : ''}`
      : outcome === 'rebooted' ? 'the boot did not finish: the machine went back to its firmware (PXE DHCP) without reporting booted'
        : `no booted or failed within ${seconds(this.d.config.timeoutMs)} of ${rec.why}`;
    const screen = lastScreen(log.bytes().toString('utf8'), this.d.config.lines);
    const body = screen.length ? `last ${screen.length} console lines:\n${screen.join('\n')}` : `the console printed nothing${rec.problem ? ` (${rec.problem})` : ''}`;
    this.d.events.emit({ mac: mac ?? rec.mac, host: rec.host, stage: 'console', detail: `${head}; ${body}` });
  }

  async close(): Promise<void> {
    this.unsubscribe?.();
    await Promise.all([...this.recs.keys()].map((h) => this.finish(h, 'closed')));
    await Promise.all([...this.ending.values()]);
  }
}

/** Values a recorder can work with; a config that says otherwise is refused at start. */
export function checkConsoleConfig(c: ConsoleRecordConfig): void {
  const bad = (what: string, v: number) => new RangeError(`bmc.console.${what}: ${v} is out of range`);
  if (!(c.timeoutMs >= 1000)) throw bad('timeoutMs (at least 1000)', c.timeoutMs);
  if (!(Number.isInteger(c.lines) && c.lines >= 1 && c.lines <= 200)) throw bad('lines (1-200)', c.lines);
  if (!(Number.isInteger(c.maxBytes) && c.maxBytes >= 4096)) throw bad('maxBytes (at least 4096)', c.maxBytes);
  if (!(Number.isInteger(c.maxSessions) && c.maxSessions >= 1)) throw bad('maxSessions (at least 1)', c.maxSessions);
  if (!(c.settleMs >= 0 && c.settleMs <= 60_000)) throw bad('settleMs (0-60000)', c.settleMs);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}
