/**
 * A machine's `bmc:` mapping: `{ type: ipmi | redfish, address: HOST[:PORT], user: NAME,
 * password: secret:NAME }` plus, for Redfish, `scheme: https | http` and `tls_verify: false`.
 * Passwords are never written in machines.yaml: only a reference to secrets.yaml is accepted, and an
 * error message never repeats what was written there (it may be a real password).
 */
import { has, type Reader, val } from './read.js';
import { isIPv4 } from './ip.js';
import type { Locs } from './parse.js';
import type { MachineBmc } from './types.js';

const KEYS = ['type', 'address', 'user', 'password', 'scheme', 'tls_verify'];
const HOSTNAME = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i;
const SECRET_REF = /^secret:([A-Za-z0-9_.-]+)$/;

/** "10.0.0.211", "bmc1.example", "10.0.0.211:623", "[fd00::1]:443" → host and port, or undefined. */
export function parseBmcAddress(text: string): { host: string; port?: number } | undefined {
  const m = /^(?:\[([0-9a-f:.]+)\]|([^:[\]]+))(?::(\d{1,5}))?$/i.exec(text);
  if (!m) return undefined;
  const host = m[1] ?? m[2] ?? '';
  const port = m[3] === undefined ? undefined : Number(m[3]);
  if (port !== undefined && (port < 1 || port > 65535)) return undefined;
  if (m[1] === undefined && !isIPv4(host) && (!HOSTNAME.test(host) || /^[\d.]+$/.test(host))) return undefined;
  if (m[1] !== undefined && !m[1].includes(':')) return undefined;
  return port === undefined ? { host } : { host, port };
}

export function parseBmc(r: Reader, node: unknown, p: string, locs: Locs): MachineBmc | undefined {
  const m = r.map(node, p, KEYS);
  if (!m) return undefined;
  let ok = true;
  for (const k of ['type', 'address', 'user', 'password']) {
    if (!has(m, k)) { r.err(node, p, `missing required key "${k}"`); ok = false; }
  }
  const type = has(m, 'type') ? r.oneOf(val(m, 'type'), `${p}.type`, ['ipmi', 'redfish'] as const) : undefined;
  const addrText = has(m, 'address') ? r.str(val(m, 'address'), `${p}.address`) : undefined;
  const addr = addrText === undefined ? undefined : parseBmcAddress(addrText);
  if (addrText !== undefined && !addr) r.err(val(m, 'address'), `${p}.address`, `"${addrText}" is not a BMC address (want HOST or HOST:PORT, like 10.0.0.211 or bmc-w101.example:8443)`);
  const user = has(m, 'user') ? r.str(val(m, 'user'), `${p}.user`) : undefined;
  if (user === '') r.err(val(m, 'user'), `${p}.user`, 'must not be empty');
  let secret: string | undefined;
  if (has(m, 'password')) {
    const pw = val(m, 'password');
    const text = r.str(pw, `${p}.password`);
    secret = text === undefined ? undefined : SECRET_REF.exec(text)?.[1];
    if (text !== undefined && !secret) r.err(pw, `${p}.password`, 'must be secret:NAME, naming a secret in secrets.yaml (a password is never written in machines.yaml)');
    locs.set(`${r.file}#${p}.password`, r.loc(pw));
  }
  const scheme = has(m, 'scheme') ? r.oneOf(val(m, 'scheme'), `${p}.scheme`, ['https', 'http'] as const) : undefined;
  const tlsVerify = has(m, 'tls_verify') ? r.bool(val(m, 'tls_verify'), `${p}.tls_verify`) : undefined;
  if (type === 'ipmi') {
    for (const k of ['scheme', 'tls_verify']) if (has(m, k)) r.err(val(m, k), `${p}.${k}`, `only for type redfish (IPMI speaks RMCP+ over UDP)`);
  }
  if (!ok || !type || !addr || !user || !secret) return undefined;
  return {
    type, host: addr.host, ...(addr.port !== undefined ? { port: addr.port } : {}), user, passwordSecret: secret,
    scheme: scheme ?? 'https', tlsVerify: tlsVerify ?? true,
  };
}
