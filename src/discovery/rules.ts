/**
 * discovery.rules (rolecast.yaml): for racks where the switch port, the serial range or the shape of
 * the box decides its role. The first rule whose every condition holds names the box (host template),
 * gives its role and an address from the rule's range; `auto: true` adopts without a person.
 * Pure functions of (rule, facts, inventory).
 */
import type { DiscoveryRule, Inventory, IpRange } from '../inventory/types.js';
import { intToIp, ipToInt } from '../inventory/ip.js';
import type { HardwareFacts, LldpFacts } from './report.js';

/** Shell-style `*` and `?` globs, anchored (an LLDP port "Ethernet1/*", a switch "rack3-*"). */
export function globMatch(glob: string, s: string): boolean {
  const re = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${re}$`, 'i').test(s);
}

function lldpMatches(rule: DiscoveryRule, l: LldpFacts | undefined): boolean {
  const m = rule.match;
  if (m.lldpSystem === undefined && m.lldpPort === undefined && m.lldpChassis === undefined) return true;
  if (!l) return false;
  return (m.lldpSystem === undefined || (l.system !== undefined && globMatch(m.lldpSystem, l.system))) &&
    (m.lldpPort === undefined || (l.port !== undefined && globMatch(m.lldpPort, l.port))) &&
    (m.lldpChassis === undefined || (l.chassis !== undefined && globMatch(m.lldpChassis, l.chassis)));
}

/** Does every condition of the rule hold for these facts? A condition on a fact the box lacks fails. */
export function ruleMatches(rule: DiscoveryRule, f: HardwareFacts): boolean {
  const m = rule.match;
  const serial = f.system.serial;
  if (m.serialPrefix !== undefined && !(serial && serial.startsWith(m.serialPrefix))) return false;
  if (m.vendor !== undefined && !(f.system.vendor && globMatch(m.vendor, f.system.vendor))) return false;
  if (m.product !== undefined && !(f.system.product && globMatch(m.product, f.system.product))) return false;
  if (m.nics !== undefined && f.nics.length !== m.nics) return false;
  if (m.memoryMiBMin !== undefined && !(f.memoryMiB !== undefined && f.memoryMiB >= m.memoryMiBMin)) return false;
  if (m.memoryMiBMax !== undefined && !(f.memoryMiB !== undefined && f.memoryMiB <= m.memoryMiBMax)) return false;
  return f.nics.some((n) => lldpMatches(rule, n.lldp)) || (f.nics.length === 0 && lldpMatches(rule, undefined));
}

export function firstMatch(rules: readonly DiscoveryRule[], f: HardwareFacts): DiscoveryRule | undefined {
  return rules.find((r) => ruleMatches(r, f));
}

/** What a host-name template may become: an RFC 1123 label. */
export const HOST_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

function label(s: string): string {
  return s.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '');
}

/**
 * Fill a host-name template: {serial}, {mac} (hex digits of the reporting MAC), {port} and {switch}
 * (LLDP of the first NIC that has a neighbour), {n} (the lowest number from 1 giving a free name).
 * Undefined when a placeholder has no value on this box or the result is no valid host name.
 */
export function hostFromTemplate(template: string, f: HardwareFacts, mac: string, taken: (host: string) => boolean): string | undefined {
  const l = f.nics.find((n) => n.lldp)?.lldp;
  const values: Record<string, string | undefined> = { serial: f.system.serial, mac: mac.replace(/:/g, ''), port: l?.port, switch: l?.system };
  let missing = false;
  const filled = template.replace(/\{(serial|mac|port|switch)\}/g, (_, k: string) => {
    const v = values[k];
    if (!v) missing = true;
    return v ? label(v) : '';
  });
  if (missing) return undefined;
  if (!filled.includes('{n}')) return HOST_RE.test(filled) && !taken(filled) ? filled : undefined;
  for (let n = 1; n < 100_000; n++) {
    const h = filled.replace(/\{n\}/g, String(n));
    if (!HOST_RE.test(h)) return undefined;
    if (!taken(h)) return h;
  }
  return undefined;
}

/** The first address of the range nobody uses (inventory, live leases of other MACs), or undefined. */
export function freeAddress(range: IpRange, inUse: (ip: string) => boolean): string | undefined {
  const a = ipToInt(range.start);
  const b = ipToInt(range.end);
  if (a === undefined || b === undefined) return undefined;
  for (let n = a; n <= b; n++) {
    const ip = intToIp(n);
    if (!inUse(ip)) return ip;
  }
  return undefined;
}

/** Host names taken in the inventory. */
export function hostTaken(inv: Inventory): (h: string) => boolean {
  return (h) => inv.byHost.has(h);
}
