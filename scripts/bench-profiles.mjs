// Large inventories for the benchmarks: the bundled profiles (roles, sites, secrets) with the
// provisioning network widened to a /14 and N machines: the lb pair, then web boxes serving SiteA or
// SiteB. Machine i has MACs 52:54:01:xx:xx:xx and 52:54:02:xx:xx:xx (i in the low 24 bits; bonded roles need two) and address 10.0.1.0 + i.
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(fileURLToPath(import.meta.url), '../..');

const hex = (n) => n.toString(16).padStart(2, '0');
export const macOf = (i, nic = 1) => `52:54:0${nic}:${hex((i >> 16) & 255)}:${hex((i >> 8) & 255)}:${hex(i & 255)}`;
export const ipOf = (i) => { const n = (10 << 24) + 256 + i; return [n >>> 24, (n >> 16) & 255, (n >> 8) & 255, n & 255].join('.'); };

/** Writes profiles for n machines (n >= 2) into dir; returns the machines as {host, mac, ip}. */
export function writeProfiles(dir, n) {
  cpSync(join(ROOT, 'profiles'), dir, { recursive: true });
  const site = readFileSync(join(dir, 'rolecast.yaml'), 'utf8')
    .replace('cidr: 10.0.0.0/24', 'cidr: 10.0.0.0/14')
    .replace('pool: { start: 10.0.0.200, end: 10.0.0.249 }', 'pool: { start: 10.3.0.0, end: 10.3.200.255 }');
  writeFileSync(join(dir, 'rolecast.yaml'), site);
  const machines = [];
  const lines = ['machines:'];
  for (let i = 0; i < n; i++) {
    const m = { host: i < 2 ? `lb${i + 1}` : `w${i}`, mac: macOf(i), ip: ipOf(i) };
    machines.push(m);
    if (i < 2) lines.push(`  - { host: ${m.host}, mac: [${m.mac}, ${macOf(i, 2)}], role: lb, ip: ${m.ip}, addresses: { wan: 203.0.113.${2 + i} }, vrrp: { priority: ${150 - 50 * i}, state: ${i ? 'BACKUP' : 'MASTER'} } }`);
    else lines.push(`  - { host: ${m.host}, mac: [${m.mac}, ${macOf(i, 2)}], role: web, ip: ${m.ip}, sites: [${i % 2 ? 'SiteA' : 'SiteB'}] }`);
  }
  writeFileSync(join(dir, 'machines.yaml'), `${lines.join('\n')}\n`);
  return machines;
}
