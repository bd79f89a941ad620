/**
 * What changed between two commissioning reports of the same box (`rolecast facts <host>`): a disk
 * gone, a NIC at a lower speed, memory missing — the things an operator re-commissions to find out.
 * Disks are matched by serial (else name), NICs by MAC: a renamed device is not a replaced one.
 */
import type { DiskFacts, HardwareFacts, NicFacts } from './report.js';

function gib(bytes: number | undefined): string {
  return bytes === undefined ? '?' : `${(bytes / 2 ** 30).toFixed(1)} GiB`;
}

function diskKey(d: DiskFacts): string {
  return d.serial ? `serial:${d.serial}` : `name:${d.name}`;
}

function describeDisk(d: DiskFacts): string {
  return `${d.name} (${gib(d.bytes)}${d.model ? ` ${d.model}` : ''}${d.serial ? `, serial ${d.serial}` : ''})`;
}

function diffDisks(a: DiskFacts[], b: DiskFacts[]): string[] {
  const before = new Map(a.map((d) => [diskKey(d), d]));
  const after = new Map(b.map((d) => [diskKey(d), d]));
  const out: string[] = [];
  for (const [k, d] of before) if (!after.has(k)) out.push(`disk gone: ${describeDisk(d)}`);
  for (const [k, d] of after) {
    const was = before.get(k);
    if (!was) out.push(`disk new: ${describeDisk(d)}`);
    else if (was.bytes !== d.bytes) out.push(`disk ${d.name}: size ${gib(was.bytes)} → ${gib(d.bytes)}`);
  }
  return out;
}

const lldpText = (n: NicFacts) => (n.lldp ? `${n.lldp.system ?? n.lldp.chassis ?? '?'} port ${n.lldp.port ?? '?'}${n.lldp.vlan ? ` vlan ${n.lldp.vlan}` : ''}` : 'none');

function diffNics(a: NicFacts[], b: NicFacts[]): string[] {
  const before = new Map(a.map((n) => [n.mac, n]));
  const after = new Map(b.map((n) => [n.mac, n]));
  const out: string[] = [];
  for (const [mac, n] of before) if (!after.has(mac)) out.push(`nic gone: ${n.name} ${mac}`);
  for (const [mac, n] of after) {
    const was = before.get(mac);
    if (!was) { out.push(`nic new: ${n.name} ${mac}`); continue; }
    if (was.speedMbps !== n.speedMbps) {
      const dir = (n.speedMbps ?? 0) < (was.speedMbps ?? 0) ? ' (lower)' : '';
      out.push(`nic ${n.name}: speed ${was.speedMbps ?? '?'} → ${n.speedMbps ?? '?'} Mb/s${dir}`);
    }
    if (was.link !== n.link) out.push(`nic ${n.name}: link ${was.link ? 'up' : 'down'} → ${n.link ? 'up' : 'down'}`);
    if (lldpText(was) !== lldpText(n)) out.push(`nic ${n.name}: switch ${lldpText(was)} → ${lldpText(n)}`);
  }
  return out;
}

function field(label: string, a: unknown, b: unknown): string[] {
  return a === b ? [] : [`${label}: ${a ?? '?'} → ${b ?? '?'}`];
}

/** Human-readable changes from `before` to `after`; empty when nothing changed. */
export function diffFacts(before: HardwareFacts, after: HardwareFacts): string[] {
  return [
    ...field('system serial', before.system?.serial, after.system?.serial),
    ...field('system uuid', before.system?.uuid, after.system?.uuid),
    ...field('cpu', before.cpu?.model, after.cpu?.model),
    ...field('cpu threads', before.cpu?.threads, after.cpu?.threads),
    ...field('memory MiB', before.memoryMiB, after.memoryMiB),
    ...diffDisks(before.disks ?? [], after.disks ?? []),
    ...diffNics(before.nics ?? [], after.nics ?? []),
    ...field('bmc address', before.bmc?.address, after.bmc?.address),
  ];
}
