/**
 * Discovery, the operations the API, the CLI (through the API) and rules share: accept a report,
 * adopt, forget, list. One queue serialises every change to the inbox, so two reports of the same box
 * (its two NICs) or a report racing an adoption can never make two entries or lose one.
 */
import type { DiscoveredRecord, DiscoveredStore, ProfileEditor } from '../state/types.js';
import type { Inventory } from '../inventory/types.js';
import type { LeaseView } from '../leases.js';
import type { EventSink } from '../events/types.js';
import type { Logger } from '../log.js';
import { RolecastError } from '../errors.js';
import { MACHINES_FILE } from '../inventory/load.js';
import { ingest, findRecord, reconcile } from './inbox.js';
import { appendMachine, AdoptError, machineLine, planAdoption, type Adoption, type AdoptRequest } from './adopt.js';
import { firstMatch, freeAddress, hostFromTemplate, hostTaken } from './rules.js';
import type { HardwareFacts } from './report.js';

export interface DiscoveryDeps {
  store: DiscoveredStore;
  getInventory: () => Inventory;
  /** Rebuild the inventory snapshot from the profiles now (after an adoption wrote machines.yaml). */
  reload: () => Promise<void>;
  profiles: ProfileEditor;
  leases?: LeaseView;
  events?: EventSink;
  logger: Logger;
  /** Most entries the inbox holds; reports of new boxes beyond it are refused (none is evicted). */
  maxEntries?: number;
}

export class InboxFullError extends RolecastError {
  constructor(max: number) { super('E_INBOX_FULL', `the discovery inbox holds ${max} entries: adopt or forget some (rolecast discovered)`); }
}

export interface AdoptInput { host?: string; role?: string; ip?: string; by?: string }

export class Discovery {
  private queue: Promise<unknown> = Promise.resolve();
  readonly maxEntries: number;

  constructor(private readonly d: DiscoveryDeps) {
    this.maxEntries = d.maxEntries ?? 4096;
  }

  /** Run one change after the previous one finished (whatever its outcome). */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /**
   * May a report for this MAC come from this address? Only from the address rolecast leased to that
   * MAC, or the machine's reserved one (commissioning a known machine): anyone else on the network
   * could otherwise write facts for any box.
   */
  accepts(mac: string, from: string): boolean {
    if (!from) return false;
    return from === this.d.leases?.addressOf(mac) || from === this.d.getInventory().byMac.get(mac)?.ip;
  }

  list(): DiscoveredRecord[] {
    const inv = this.d.getInventory();
    return this.d.store.list().map((r) => reconcile(r, inv));
  }

  /** Entries matching a MAC (any of a box's), a serial or a UUID. */
  find(key: string, mac: string | undefined): DiscoveredRecord[] {
    return findRecord(this.list(), key, mac);
  }

  report(mac: string, facts: HardwareFacts, from: string): Promise<DiscoveredRecord> {
    return this.serial(async () => {
      const inv = this.d.getInventory();
      const records = this.list();
      const { record, created } = ingest({ mac, facts, from, now: new Date().toISOString() }, records, inv);
      if (created && records.length >= this.maxEntries) throw new InboxFullError(this.maxEntries);
      await this.d.store.put(record);
      const what = record.state === 'known-machine-new-nic' ? `${record.host}, new MAC` : record.state === 'adopted' ? `known as ${record.host}` : `waiting (entry ${record.mac})`;
      this.d.events?.emit({ mac, stage: 'discovered', ...(record.host ? { host: record.host } : {}), address: from, detail: what });
      this.d.logger.info({ mac, entry: record.mac, state: record.state, host: record.host, serial: facts.system.serial, uuid: facts.system.uuid }, 'discovery report');
      if (record.state === 'waiting') return (await this.autoAdopt(record, inv)) ?? record;
      return record;
    });
  }

  /** A rule with `auto: true` adopts at once; a failure leaves the box waiting and says why. */
  private async autoAdopt(rec: DiscoveredRecord, inv: Inventory): Promise<DiscoveredRecord | undefined> {
    const rule = firstMatch(inv.discovery.rules, rec.facts as unknown as HardwareFacts);
    if (!rule?.auto) return undefined;
    try {
      return (await this.adoptNow(rec, this.ruleRequest(rec, rule.name, inv), `rule ${rule.name}`)).record;
    } catch (err) {
      this.d.logger.warn({ err, mac: rec.mac, rule: rule.name }, 'auto adoption refused; the box stays waiting');
      this.d.events?.emit({ mac: rec.via ?? rec.mac, stage: 'failed', detail: `auto adoption by rule ${rule.name} refused: ${(err as Error).message}` });
      return undefined;
    }
  }

  private ruleRequest(rec: DiscoveredRecord, ruleName: string, inv: Inventory): AdoptRequest {
    const rule = inv.discovery.rules.find((r) => r.name === ruleName)!;
    const host = hostFromTemplate(rule.host, rec.facts as unknown as HardwareFacts, rec.via ?? rec.mac, hostTaken(inv));
    if (!host) throw new AdoptError('E_ADOPT_HOST', `rule ${rule.name}: host template "${rule.host}" gives no free host name for this box`);
    return { host, role: rule.role, ...(rule.addresses ? { range: rule.addresses } : {}) };
  }

  /** What adopting this entry would use without --host/--role: the first matching rule's answer. */
  suggestion(rec: DiscoveredRecord): (AdoptRequest & { rule: string }) | undefined {
    const inv = this.d.getInventory();
    const rule = firstMatch(inv.discovery.rules, rec.facts as unknown as HardwareFacts);
    if (!rule) return undefined;
    try {
      return { ...this.ruleRequest(rec, rule.name, inv), rule: rule.name };
    } catch {
      return undefined;
    }
  }

  /** Adopt by MAC, serial or UUID. Host and role default to the matching rule's. */
  adopt(key: string, mac: string | undefined, input: AdoptInput): Promise<{ record: DiscoveredRecord; adoption: Adoption }> {
    return this.serial(async () => {
      const found = this.find(key, mac);
      if (found.length === 0) throw new AdoptError('E_NOT_FOUND', `nothing in the discovery inbox matches "${key}" (rolecast discovered)`);
      if (found.length > 1) throw new AdoptError('E_ADOPT_AMBIGUOUS', `"${key}" matches ${found.length} entries (${found.map((r) => r.mac).join(', ')}): name one by MAC`);
      const rec = found[0]!;
      const inv = this.d.getInventory();
      const s = this.suggestion(rec);
      const host = input.host ?? s?.host;
      const role = input.role ?? s?.role;
      if (!host || !role) throw new AdoptError('E_ADOPT_HOST', 'give --host and --role (no discovery rule matches this box)');
      const range = input.ip ? undefined : s?.range;
      return this.adoptNow(rec, { host, role, ...(input.ip ? { ip: input.ip } : {}), ...(range ? { range } : {}) }, input.by ?? 'operator', inv);
    });
  }

  /**
   * The address adopting this entry would get without --ip: the first free one of the rule's range (or
   * discovery.addresses), as adopt picks it now. Shown by the UI's inbox; adopt re-checks at its time.
   */
  nextAddress(rec: DiscoveredRecord, range?: AdoptRequest['range']): string | undefined {
    const inv = this.d.getInventory();
    const r = range ?? inv.discovery.addresses;
    if (!r) return undefined;
    const busy = this.inUseBy(rec);
    return freeAddress(r, (a) => inv.byIp.has(a) || busy(a));
  }

  private inUseBy(rec: DiscoveredRecord): (ip: string) => boolean {
    const now = Date.now();
    const mine = new Set(rec.macs);
    return (ip) => (this.d.leases?.list() ?? []).some((l) => l.ip === ip && !mine.has(l.mac) &&
      (l.state === 'bound' || l.state === 'offered') && Date.parse(l.expiresAt) > now);
  }

  private async adoptNow(rec: DiscoveredRecord, req: AdoptRequest, by: string, inv = this.d.getInventory()): Promise<{ record: DiscoveredRecord; adoption: Adoption }> {
    const plan = planAdoption(rec, req, inv, this.inUseBy(rec));
    const serial = (rec.facts as unknown as HardwareFacts).system?.serial;
    let line = '';
    await this.d.profiles.edit(MACHINES_FILE, (text) => appendMachine(text, (indent) => {
      line = machineLine(plan, indent, { ...(inv.discovery.bmc ? { bmc: inv.discovery.bmc } : {}), ...(serial ? { serial } : {}) });
      return line;
    }), { who: by, what: `adopt ${rec.mac} as ${plan.host} (${plan.role})` });
    await this.d.reload();
    const record: DiscoveredRecord = { ...rec, state: 'adopted', host: plan.host, address: plan.ip };
    await this.d.store.put(record);
    this.d.events?.emit({ mac: rec.via ?? rec.mac, stage: 'adopted', host: plan.host, detail: `${plan.host} role=${plan.role} ip=${plan.ip} by ${by}` });
    this.d.logger.info({ mac: rec.mac, host: plan.host, role: plan.role, ip: plan.ip, macs: plan.macs, by }, 'discovered machine adopted');
    return { record, adoption: { ...plan, line } };
  }

  forget(key: string, mac: string | undefined): Promise<DiscoveredRecord> {
    return this.serial(async () => {
      const found = this.find(key, mac);
      if (found.length !== 1) throw new AdoptError(found.length ? 'E_ADOPT_AMBIGUOUS' : 'E_NOT_FOUND', found.length ? `"${key}" matches ${found.length} entries: name one by MAC` : `nothing in the discovery inbox matches "${key}"`);
      await this.d.store.remove(found[0]!.mac);
      this.d.logger.info({ mac: found[0]!.mac }, 'discovery entry forgotten');
      return found[0]!;
    });
  }
}
