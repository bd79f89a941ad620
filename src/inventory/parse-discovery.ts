/**
 * `discovery:` in rolecast.yaml: the default address range for adopted machines and the rules that
 * name, place and (with `auto: true`) adopt discovered boxes. Structure here; roles and networks are
 * checked across files in validate.ts.
 */
import type { DiscoveryConfig, DiscoveryRule, IpRange, RuleMatch } from './types.js';
import { has, type Reader, val } from './read.js';
import { ipv4, type Locs } from './parse.js';
import { ipToInt } from './ip.js';

const MATCH_KEYS = ['serial_prefix', 'vendor', 'product', 'nics', 'memory_mib_min', 'memory_mib_max', 'lldp_system', 'lldp_port', 'lldp_chassis'] as const;

export function ipRange(r: Reader, node: unknown, path: string, locs: Locs): IpRange | undefined {
  const m = r.map(node, path, ['start', 'end']);
  if (!m) return undefined;
  const start = ipv4(r, val(m, 'start'), `${path}.start`);
  const end = ipv4(r, val(m, 'end'), `${path}.end`);
  if (!start || !end) return undefined;
  if (ipToInt(start)! > ipToInt(end)!) {
    r.err(node, path, `start ${start} is after end ${end}`);
    return undefined;
  }
  locs.set(`${r.file}#${path}`, r.loc(node));
  return { start, end };
}

function match(r: Reader, node: unknown, path: string): RuleMatch {
  const m = r.map(node, path, MATCH_KEYS);
  const s = (k: string) => (has(m, k) ? r.str(val(m, k), `${path}.${k}`) : undefined);
  const n = (k: string, max: number) => (has(m, k) ? r.int(val(m, k), `${path}.${k}`, 0, max) : undefined);
  const out: RuleMatch = {
    serialPrefix: s('serial_prefix'), vendor: s('vendor'), product: s('product'), nics: n('nics', 64),
    memoryMiBMin: n('memory_mib_min', 1 << 30), memoryMiBMax: n('memory_mib_max', 1 << 30),
    lldpSystem: s('lldp_system'), lldpPort: s('lldp_port'), lldpChassis: s('lldp_chassis'),
  };
  return Object.fromEntries(Object.entries(out).filter(([, v]) => v !== undefined)) as RuleMatch;
}

function rule(r: Reader, node: unknown, path: string, locs: Locs): DiscoveryRule | undefined {
  const m = r.map(node, path, ['name', 'match', 'host', 'role', 'addresses', 'auto']);
  if (!m) return undefined;
  for (const k of ['name', 'match', 'host', 'role']) if (!has(m, k)) r.err(node, path, `needs ${k}`);
  const host = has(m, 'host') ? r.str(val(m, 'host'), `${path}.host`) : undefined;
  if (host !== undefined && !/^[a-z0-9{}-]+$/.test(host)) r.err(val(m, 'host'), `${path}.host`, `"${host}" is not a host-name template (lower-case letters, digits, "-", and {serial} {mac} {port} {switch} {n})`);
  const role = has(m, 'role') ? r.str(val(m, 'role'), `${path}.role`) : undefined;
  if (role !== undefined) locs.set(`${r.file}#${path}.role`, r.loc(val(m, 'role')));
  const out: DiscoveryRule = {
    name: (has(m, 'name') && r.str(val(m, 'name'), `${path}.name`)) || path,
    match: has(m, 'match') ? match(r, val(m, 'match'), `${path}.match`) : {},
    host: host ?? '', role: role ?? '',
    auto: has(m, 'auto') ? r.bool(val(m, 'auto'), `${path}.auto`) ?? false : false,
  };
  if (has(m, 'addresses')) {
    const a = ipRange(r, val(m, 'addresses'), `${path}.addresses`, locs);
    if (a) out.addresses = a;
  }
  return out;
}

export function parseDiscovery(r: Reader, node: unknown, locs: Locs): DiscoveryConfig {
  const m = r.map(node, 'discovery', ['addresses', 'rules']);
  const out: DiscoveryConfig = { rules: [] };
  if (has(m, 'addresses')) {
    const a = ipRange(r, val(m, 'addresses'), 'discovery.addresses', locs);
    if (a) out.addresses = a;
  }
  if (has(m, 'rules')) {
    (r.list(val(m, 'rules'), 'discovery.rules') ?? []).forEach((n, i) => {
      const x = rule(r, n, `discovery.rules[${i}]`, locs);
      if (x) out.rules.push(x);
    });
  }
  return out;
}
