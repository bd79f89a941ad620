/**
 * Adoption, the pure part: from an inbox entry and the operator's (or a rule's) choice to the ONE line
 * appended to machines.yaml, refusing clearly before anything is written. The write itself goes
 * through the ProfileEditor (serialised, compare-and-swap, whole profile set validated first).
 */
import { isMap, isScalar, isSeq, parseDocument, type Node } from 'yaml';
import { RolecastError } from '../errors.js';
import type { DiscoveredRecord } from '../state/types.js';
import type { DiscoveryBmc, Inventory, IpRange } from '../inventory/types.js';
import { isIPv4 } from '../inventory/ip.js';
import { MACHINES_FILE } from '../inventory/load.js';
import type { HardwareFacts } from './report.js';
import { freeAddress, HOST_RE } from './rules.js';

export type AdoptCode = 'E_ADOPT_HOST' | 'E_ADOPT_ROLE' | 'E_ADOPT_ADDRESS' | 'E_ADOPT_MAC' | 'E_ADOPT_STATE' | 'E_ADOPT_AMBIGUOUS';

export class AdoptError extends RolecastError {
  constructor(code: AdoptCode | 'E_NOT_FOUND', message: string) { super(code, message); }
}

export interface AdoptRequest {
  host: string;
  role: string;
  ip?: string;
  /** Where to take an address from when `ip` is not given (the rule's range, else discovery.addresses). */
  range?: IpRange;
}

export interface Adoption {
  host: string;
  role: string;
  ip: string;
  macs: string[];
  uuid?: string;
  bmcAddress?: string;
  /** The text appended to machines.yaml (one line, with its newline). */
  line: string;
}

/** Is this address taken: a machine's, or live-leased to a MAC that is not this box's? */
export type AddressInUse = (ip: string) => boolean;

/** The box's MACs, the NIC it booted from last first: that is the one its firmware PXE-boots. */
export function adoptionMacs(rec: DiscoveredRecord): string[] {
  const facts = rec.facts as unknown as HardwareFacts;
  const first = rec.via ?? rec.mac;
  return [...new Set([first, ...(facts.nics ?? []).map((n) => n.mac), ...rec.macs])];
}

export function planAdoption(rec: DiscoveredRecord, req: AdoptRequest, inv: Inventory, inUse: AddressInUse): Adoption {
  if (rec.state !== 'waiting') throw new AdoptError('E_ADOPT_STATE', `${rec.mac} is ${rec.state === 'adopted' ? `already adopted as ${rec.host}` : `${rec.host}'s new NIC, not a new box (edit ${rec.host}'s mac list)`}`);
  if (!HOST_RE.test(req.host)) throw new AdoptError('E_ADOPT_HOST', `"${req.host}" is not a host name (lower-case letters, digits and "-", at most 63)`);
  if (inv.byHost.has(req.host)) throw new AdoptError('E_ADOPT_HOST', `host "${req.host}" already exists (${inv.byHost.get(req.host)!.source.file}:${inv.byHost.get(req.host)!.source.line})`);
  if (!inv.roles[req.role]) throw new AdoptError('E_ADOPT_ROLE', `unknown role "${req.role}" (roles: ${Object.keys(inv.roles).sort().join(', ')})`);
  const macs = adoptionMacs(rec);
  for (const mac of macs) {
    const owner = inv.byMac.get(mac);
    if (owner) throw new AdoptError('E_ADOPT_MAC', `MAC ${mac} already belongs to ${owner.host}`);
  }
  let ip = req.ip;
  if (ip !== undefined) {
    if (!isIPv4(ip)) throw new AdoptError('E_ADOPT_ADDRESS', `"${ip}" is not an IPv4 address`);
    const owner = inv.byIp.get(ip);
    if (owner) throw new AdoptError('E_ADOPT_ADDRESS', `address ${ip} is in use by ${owner.host}`);
    if (inUse(ip)) throw new AdoptError('E_ADOPT_ADDRESS', `address ${ip} is leased to another machine right now`);
  } else {
    const range = req.range ?? inv.discovery.addresses;
    if (!range) throw new AdoptError('E_ADOPT_ADDRESS', 'no address: give --ip, or set discovery.addresses in rolecast.yaml');
    ip = freeAddress(range, (a) => inv.byIp.has(a) || inUse(a));
    if (!ip) throw new AdoptError('E_ADOPT_ADDRESS', `no free address left in ${range.start}–${range.end}`);
  }
  const facts = rec.facts as unknown as HardwareFacts;
  const uuid = facts.system?.uuid;
  const bmcAddress = facts.bmc?.address;
  return { host: req.host, role: req.role, ip, macs, ...(uuid ? { uuid } : {}), ...(bmcAddress ? { bmcAddress } : {}), line: '' };
}

/**
 * YAML for one flow mapping: host and role are validated labels, MACs and addresses plain scalars. A BMC
 * address found becomes `bmc:` only with the site's discovery.bmc credentials (machines.yaml's `bmc:`
 * needs a user and a password reference); otherwise it stays in the inbox entry.
 */
export function machineLine(a: Adoption, indent: string, opts: { bmc?: DiscoveryBmc; serial?: string }): string {
  const parts = [`host: ${a.host}`, `mac: [${a.macs.join(', ')}]`, `role: ${a.role}`, `ip: ${a.ip}`];
  if (a.uuid) parts.push(`uuid: ${a.uuid}`);
  if (a.bmcAddress && opts.bmc) parts.push(`bmc: { type: ${opts.bmc.type}, address: ${a.bmcAddress}, user: ${JSON.stringify(opts.bmc.user)}, password: secret:${opts.bmc.passwordSecret} }`);
  // The serial goes in a comment for the operator; JSON.stringify keeps it one line whatever it holds.
  const note = opts.serial ? `   # discovered: serial ${JSON.stringify(opts.serial).slice(1, -1).replace(/#/g, '')}` : '';
  return `${indent}- { ${parts.join(', ')} }${note}\n`;
}

/**
 * Append one item to machines.yaml's `machines:` list, after its last item and with its indentation;
 * everything else (comments, layout, other lines) stays byte for byte.
 */
export function appendMachine(text: string, build: (indent: string) => string): string {
  const doc = parseDocument(text, { version: '1.2' });
  const list = isMap(doc.contents) ? doc.contents.get('machines', true) : undefined;
  if (isScalar(list) && list.value === null) return (text.endsWith('\n') ? text : `${text}\n`) + build('  ');
  if (!isSeq(list) || list.flow) throw new AdoptError('E_ADOPT_STATE', `${MACHINES_FILE}: "machines:" is not a block list; add the line by hand`);
  const last = list.items[list.items.length - 1] as Node | undefined;
  if (!last?.range) throw new AdoptError('E_ADOPT_STATE', `${MACHINES_FILE}: cannot find the end of the machines list`);
  const lineStart = text.lastIndexOf('\n', last.range[0]) + 1;
  const indent = /^[ ]*/.exec(text.slice(lineStart))![0];
  const eol = text.indexOf('\n', last.range[1]);
  const at = eol < 0 ? text.length : eol + 1;
  const before = eol < 0 ? `${text}\n` : text.slice(0, at);
  return before + build(indent) + text.slice(at);
}
