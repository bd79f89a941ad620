/**
 * `discovery:` in rolecast.yaml: the default address range for adopted machines and the rules that
 * name, place and (with `auto: true`) adopt discovered boxes. Structure here; roles and networks are
 * checked across files in validate.ts.
 */
import type { DiscoveryBmc, DiscoveryConfig, DiscoveryRule, IpRange, RuleMatch } from './types.js';
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

/** `bmc: { type: ipmi, user: ADMIN, password: secret:NAME }`: a password only by reference, as machines' bmc. */
function bmc(r: Reader, node: unknown, locs: Locs): DiscoveryBmc | undefined {
  const p = 'discovery.bmc';
  const m = r.map(node, p, ['type', 'user', 'password']);
  if (!m) return undefined;
  for (const k of ['type', 'user', 'password']) if (!has(m, k)) r.err(node, p, `missing required key "${k}"`);
  const type = has(m, 'type') ? r.oneOf(val(m, 'type'), `${p}.type`, ['ipmi', 'redfish'] as const) : undefined;
  const user = has(m, 'user') ? r.str(val(m, 'user'), `${p}.user`) : undefined;
  const pw = has(m, 'password') ? r.str(val(m, 'password'), `${p}.password`) : undefined;
  const secret = pw === undefined ? undefined : /^secret:([A-Za-z0-9_.-]+)$/.exec(pw)?.[1];
  if (pw !== undefined && !secret) r.err(val(m, 'password'), `${p}.password`, 'must be secret:NAME, naming a secret in secrets.yaml');
  if (secret) locs.set(`${r.file}#${p}.password`, r.loc(val(m, 'password')));
  return type && user && secret ? { type, user, passwordSecret: secret } : undefined;
}

export function parseDiscovery(r: Reader, node: unknown, locs: Locs): DiscoveryConfig {
  const m = r.map(node, 'discovery', ['addresses', 'rules', 'bmc']);
  const out: DiscoveryConfig = { rules: [] };
  if (has(m, 'bmc')) {
    const b = bmc(r, val(m, 'bmc'), locs);
    if (b) out.bmc = b;
  }
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
