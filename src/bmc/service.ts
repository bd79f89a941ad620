/**
 * Power operations as the CLI and the API call them: find the machine's BMC, take a turn under the caps
 * (src/bmc/limit.ts), run the driver under a deadline with a bounded retry (call.ts), and write the
 * request and its result into the machine's boot timeline and the power log. A failure is a result
 * with an error that says what happened, never a state.
 */
import type { EventSink } from '../events/types.js';
import type { Inventory, Machine } from '../inventory/types.js';
import type { PowerAction, PowerLog } from '../state/types.js';
import { callWithDeadline, DEFAULT_POLICY, type CallPolicy } from './call.js';
import { IpmiDriver } from './ipmi.js';
import { BmcLimiter } from './limit.js';
import { RedfishDriver } from './redfish.js';
import { BmcError, bmcLabel, type BmcTarget, type PowerDriver, type PowerOp, type PowerState } from './types.js';

export interface PowerResult {
  host: string;
  op: PowerOp;
  ok: boolean;
  /** The power state the BMC reported (status), never guessed. */
  state?: PowerState;
  detail?: string;
  /** Error code (E_BMC_TIMEOUT, E_BMC_AUTH, ...) and message when !ok. */
  code?: string;
  error?: string;
  ms: number;
  bmc?: string;
}

export interface PowerServiceOptions {
  policy?: CallPolicy;
  /** Global cap on BMC calls in flight (default 16). */
  maxConcurrent?: number;
  events?: EventSink;
  log?: PowerLog;
  /** Drivers by target; tests and other transports may wrap them. */
  driver?: (t: BmcTarget) => PowerDriver;
  now?: () => number;
}

/** The machine's BMC with its password resolved from the inventory's secrets. */
export function bmcTarget(inv: Inventory, m: Machine): BmcTarget {
  const b = m.bmc;
  if (!b) throw new BmcError('no-bmc', `${m.host} has no bmc in ${m.source.file}:${m.source.line} (add bmc: { type, address, user, password: secret:NAME })`);
  const password = inv.secrets[b.passwordSecret];
  if (password === undefined) throw new BmcError('no-bmc', `${m.host}: secret "${b.passwordSecret}" is not in secrets.yaml`);
  return { type: b.type, host: b.host, ...(b.port !== undefined ? { port: b.port } : {}), user: b.user, password, scheme: b.scheme, tlsVerify: b.tlsVerify };
}

/** The op a `power-done` event reports (its detail is "<op> ok"): listeners such as the console recorder. */
export function powerDoneOp(detail: string | undefined): PowerOp | undefined {
  const m = /^(status|on|off|cycle|reset|pxe) ok$/.exec(detail ?? '');
  return m ? (m[1] as PowerOp) : undefined;
}

export function driverFor(t: BmcTarget): PowerDriver {
  return t.type === 'ipmi' ? new IpmiDriver(t) : new RedfishDriver(t);
}

export class PowerService {
  readonly policy: CallPolicy;
  readonly limiter: BmcLimiter;
  private readonly driver: (t: BmcTarget) => PowerDriver;
  private readonly now: () => number;

  constructor(private readonly o: PowerServiceOptions = {}) {
    this.policy = o.policy ?? DEFAULT_POLICY;
    this.limiter = new BmcLimiter(o.maxConcurrent ?? 16);
    this.driver = o.driver ?? driverFor;
    this.now = o.now ?? Date.now;
  }

  /** One power operation on one machine; `by` says who asked (cli, api, ...). Never throws for BMC trouble. */
  async run(inv: Inventory, m: Machine, op: PowerOp, by?: string): Promise<PowerResult> {
    const started = this.now();
    const mac = m.macs[0]!;
    const quiet = op === 'status';
    if (!quiet) this.o.events?.emit({ mac, host: m.host, stage: 'power-request', detail: `${op}${by ? ` by ${by}` : ''}` });
    let result: PowerResult;
    try {
      const t = bmcTarget(inv, m);
      const label = bmcLabel(t);
      const deadline = started + this.policy.timeoutMs;
      const reading = await this.limiter.run(label, deadline, this.policy.timeoutMs, () => callWithDeadline(label, this.policy, deadline, (signal) => this.perform(t, op, signal)));
      result = { host: m.host, op, ok: true, ...(reading?.state ? { state: reading.state } : {}), ...(reading ? { detail: reading.detail } : {}), ms: this.now() - started, bmc: `${t.type} ${label}` };
    } catch (err) {
      if (!(err instanceof BmcError)) throw err;
      result = { host: m.host, op, ok: false, code: err.code, error: err.message, ms: this.now() - started, ...(m.bmc ? { bmc: `${m.bmc.type} ${bmcLabel(m.bmc)}` } : {}) };
    }
    await this.record(m, result, by, quiet);
    return result;
  }

  /**
   * Reboot into the network: next boot from PXE once, then read the power state and switch it on if
   * it is off, or cycle it if it is on (a cycle of a switched-off box is refused by IPMI and Redfish
   * alike). Each step is its own BMC call; the first failure ends the sequence.
   */
  async rebootToNetwork(inv: Inventory, m: Machine, by?: string): Promise<PowerResult[]> {
    const out: PowerResult[] = [];
    for (const op of ['pxe', 'status'] as const) {
      const r = await this.run(inv, m, op, by);
      out.push(r);
      if (!r.ok) return out;
    }
    const state = out[1]!.state;
    if (state === undefined) {
      out.push({ host: m.host, op: 'cycle', ok: false, code: 'E_BMC_PROTOCOL', error: `${m.host}: the BMC reported "${out[1]!.detail ?? ''}", neither on nor off; not cycling`, ms: 0 });
      return out;
    }
    out.push(await this.run(inv, m, state === 'on' ? 'cycle' : 'on', by));
    return out;
  }

  /** Status of many machines at once, within the caps; one row per machine, in input order. */
  statusAll(inv: Inventory, machines: readonly Machine[], by?: string): Promise<PowerResult[]> {
    return Promise.all(machines.map((m) => this.run(inv, m, 'status', by)));
  }

  private async perform(t: BmcTarget, op: PowerOp, signal: AbortSignal): Promise<{ state?: PowerState; detail: string } | undefined> {
    const d = this.driver(t);
    switch (op) {
      case 'status': return d.status(signal);
      case 'on': await d.on(signal); return undefined;
      case 'off': await d.off(signal); return undefined;
      case 'cycle': await d.cycle(signal); return undefined;
      case 'reset': await d.reset(signal); return undefined;
      case 'pxe': await d.pxeOnce(signal); return undefined;
    }
  }

  private async record(m: Machine, r: PowerResult, by: string | undefined, quiet: boolean): Promise<void> {
    const mac = m.macs[0]!;
    // Status reads are not actions: they stay out of the boot timeline unless they failed.
    if (!r.ok) this.o.events?.emit({ mac, host: m.host, stage: 'power-failed', detail: `${r.op}: ${r.error}` });
    else if (!quiet) this.o.events?.emit({ mac, host: m.host, stage: 'power-done', detail: `${r.op} ok` });
    const a: PowerAction = { host: m.host, op: r.op, at: new Date(this.now()).toISOString(), ok: r.ok, ms: r.ms, ...(by ? { by } : {}), ...(r.state ? { state: r.state } : {}), ...(r.error ? { error: r.error } : {}) };
    await this.o.log?.record(a);
  }
}
