/**
 * The inbox logic, pure: turn one accepted report into the record to store, de-duplicated by the box's
 * identity. Duplicates are the field's top complaint about discovery (warewulf#1264, Ironic's docs):
 * a box is one entry whichever NIC it booted from, and a known machine whose NIC was swapped is that
 * machine ("edge7, new MAC"), never a new box.
 */
import type { DiscoveredRecord } from '../state/types.js';
import type { Inventory, Machine } from '../inventory/types.js';
import type { HardwareFacts } from './report.js';

export interface Identity { uuid?: string; serial?: string; vendor?: string; product?: string }

/**
 * Values firmware puts in SMBIOS when the vendor filled in nothing: many boxes share them, so they
 * identify nothing (matching on them is how blind discovery binds the wrong node).
 */
const PLACEHOLDER_SERIALS = new Set([
  '0', '00000000', '0000000000', '0123456789', '1234567890', '123456789', 'none', 'n/a', 'na', 'not specified',
  'not applicable', 'default string', 'to be filled by o.e.m.', 'to be filled by oem', 'system serial number',
  'chassis serial number', 'serial', 'oem', 'unknown', 'empty', 'xxxxxxxxxx',
]);
const PLACEHOLDER_UUIDS = new Set([
  '00000000-0000-0000-0000-000000000000', 'ffffffff-ffff-ffff-ffff-ffffffffffff',
  // "03000200-0400-0500-0006-000700080009": shipped on many boards whose vendor never set one.
  '03000200-0400-0500-0006-000700080009',
]);

export function identityOf(f: HardwareFacts | Record<string, unknown>): Identity {
  const s = ((f as HardwareFacts).system ?? {}) as HardwareFacts['system'];
  const serial = s.serial && !PLACEHOLDER_SERIALS.has(s.serial.toLowerCase()) ? s.serial : undefined;
  const uuid = s.uuid && !PLACEHOLDER_UUIDS.has(s.uuid.toLowerCase()) ? s.uuid.toLowerCase() : undefined;
  return { ...(uuid ? { uuid } : {}), ...(serial ? { serial } : {}), ...(s.vendor ? { vendor: s.vendor } : {}), ...(s.product ? { product: s.product } : {}) };
}

/**
 * Same box? The SMBIOS UUID decides when both have a real one (two boards cloned with the same serial
 * stay two boxes); otherwise the serial, from the same vendor and product.
 */
export function sameBox(a: Identity, b: Identity): boolean {
  if (a.uuid && b.uuid) return a.uuid === b.uuid;
  return !!a.serial && a.serial === b.serial && (a.vendor ?? '') === (b.vendor ?? '') && (a.product ?? '') === (b.product ?? '');
}

export function nicMacs(f: HardwareFacts | Record<string, unknown>): string[] {
  return ((f as HardwareFacts).nics ?? []).map((n) => n.mac);
}

/** The inventory machine this box is, by MAC, by the UUID in machines.yaml, or by an earlier adoption. */
function knownMachine(mac: string, id: Identity, records: readonly DiscoveredRecord[], inv: Inventory): Machine | undefined {
  const byMac = inv.byMac.get(mac);
  if (byMac) return byMac;
  if (id.uuid) {
    const m = inv.machines.find((x) => x.uuid?.toLowerCase() === id.uuid);
    if (m) return m;
  }
  for (const r of records) {
    if (!r.host || r.state === 'waiting') continue;
    const m = inv.byHost.get(r.host);
    if (m && sameBox(identityOf(r.facts), id)) return m;
  }
  return undefined;
}

function union(...lists: string[][]): string[] {
  return [...new Set(lists.flat())];
}

export interface Report { mac: string; facts: HardwareFacts; from: string; now: string }

export interface IngestResult {
  record: DiscoveredRecord;
  /** True when this report created the entry. */
  created: boolean;
}

/** The record this report makes: a new entry, or an update of the one this box already has. */
export function ingest(rep: Report, records: readonly DiscoveredRecord[], inv: Inventory): IngestResult {
  const id = identityOf(rep.facts);
  const macs = union([rep.mac], nicMacs(rep.facts));
  const known = knownMachine(rep.mac, id, records, inv);
  // Commissioning a known machine updates the record it already has; a new NIC of a known machine and
  // an unknown box join the entry holding this MAC or this identity.
  const mine = records.find((r) => r.mac === rep.mac) ??
    (known ? records.find((r) => r.host === known.host && r.state !== 'waiting') : undefined) ??
    records.find((r) => r.macs.includes(rep.mac)) ??
    records.find((r) => r.state === (known ? 'known-machine-new-nic' : 'waiting') && sameBox(identityOf(r.facts), id));
  const state = !known ? 'waiting' : known.macs.includes(rep.mac) ? 'adopted' : 'known-machine-new-nic';
  const base: DiscoveredRecord = mine ?? { mac: rep.mac, macs: [], firstSeen: rep.now, lastSeen: rep.now, state, facts: {} };
  const changed = mine !== undefined && JSON.stringify(mine.facts) !== JSON.stringify(rep.facts);
  const record: DiscoveredRecord = {
    ...base,
    macs: union(base.macs, macs),
    lastSeen: rep.now,
    state,
    ...(known ? { host: known.host } : {}),
    address: rep.from,
    via: rep.mac,
    facts: rep.facts as unknown as Record<string, unknown>,
    ...(changed ? { previous: { at: mine.lastSeen, facts: mine.facts } } : {}),
  };
  if (!known) delete record.host;
  return { record, created: mine === undefined };
}

/**
 * The record as the inventory sees it now: a waiting box whose MAC has since been put in machines.yaml
 * (by adoption, a rule, or by hand) is adopted.
 */
export function reconcile(r: DiscoveredRecord, inv: Inventory): DiscoveredRecord {
  if (r.state !== 'waiting') return r;
  const m = r.macs.map((mac) => inv.byMac.get(mac)).find((x) => x !== undefined);
  return m ? { ...r, state: 'adopted', host: m.host } : r;
}

/** Find an entry by any of its MACs, its SMBIOS serial, its UUID or the host it is (what the CLI accepts). */
export function findRecord(records: readonly DiscoveredRecord[], key: string, mac: string | undefined): DiscoveredRecord[] {
  if (mac) {
    const r = records.find((x) => x.mac === mac) ?? records.find((x) => x.macs.includes(mac));
    return r ? [r] : [];
  }
  const k = key.toLowerCase();
  return records.filter((r) => {
    const s = ((r.facts as unknown as HardwareFacts).system ?? {});
    return s.serial?.toLowerCase() === k || s.uuid?.toLowerCase() === k || r.host === key;
  });
}
