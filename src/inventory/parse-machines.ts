/** machines.yaml: one flow mapping per line, the DSAS habit (moving a role is one edit). */
import { isMap, isScalar, type YAMLMap } from 'yaml';
import type { Machine, VrrpSetting } from './types.js';
import { parseBmc } from './parse-bmc.js';
import { has, type Reader, val } from './read.js';
import { BOOT, ipv4, loaders, parseFiles, type Locs } from './parse.js';
import { normaliseMac } from '../boot/facts.js';
import { isIPv4 } from './ip.js';
import { PlainMap, type PlainMachines } from './fast-machines.js';

/** Machines whose MAC list had an entry that did not parse: their NIC count is unknown, so rules that
 * count NICs (bond slaves) stay silent rather than report a follow-on error. */
export const incompleteMacs = new WeakSet<object>();

const MACHINE_KEYS = ['host', 'mac', 'role', 'ip', 'addresses', 'vrrp', 'sites', 'cmdline', 'boot', 'loaders', 'boot_once', 'confirm_wipe', 'uuid', 'files', 'bmc'];
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function macs(r: Reader, node: unknown, p: string, locs: Locs): string[] {
  const items = r.list(node, `${p}.mac`, true) ?? [];
  const out: string[] = [];
  items.forEach((n, i) => {
    const path = items.length === 1 && isScalar(node) ? `${p}.mac` : `${p}.mac[${i}]`;
    // YAML 1.1 would read an unquoted 12:34:56 as a sexagesimal number; we parse YAML 1.2, but a
    // number here still means the MAC was mangled somewhere: say so rather than guess.
    if (isScalar(n) && typeof n.value === 'number') {
      r.err(n, path, `"${String(n.source ?? n.value)}" is not a MAC address (it was read as a number; quote it)`);
      return;
    }
    const text = r.str(n, path);
    if (text === undefined) return;
    const mac = normaliseMac(text);
    if (!mac) { r.err(n, path, `"${text}" is not a MAC address (want six hex pairs like 52:54:00:12:34:56)`); return; }
    locs.set(`${r.file}#${p}.mac#${out.length}`, r.loc(n)); // by index among the valid MACs
    out.push(mac);
  });
  if (items.length === 0 && node !== undefined) r.err(node, `${p}.mac`, 'needs at least one MAC');
  if (out.length !== items.length) incompleteMacs.add(out);
  return out;
}

function addresses(r: Reader, node: unknown, p: string, locs: Locs): Record<string, string> {
  if (!isMap(node)) { r.err(node, p, 'must be a mapping of network name to address'); return {}; }
  const out: Record<string, string> = {};
  for (const pair of (node as YAMLMap).items) {
    const net = isScalar(pair.key) ? String(pair.key.value) : '';
    const ip = ipv4(r, pair.value, `${p}.${net}`);
    locs.set(`${r.file}#${p}.${net}`, r.loc(pair.value));
    locs.set(`${r.file}#${p}.${net}:key`, r.loc(pair.key));
    if (ip) out[net] = ip;
  }
  return out;
}

/** priority (1-254, RFC 5798 §5.2.4; 255 is the address owner) and state, each defaulting to `base`. */
function vrrpSetting(r: Reader, m: ReturnType<Reader['map']>, p: string, base: VrrpSetting): VrrpSetting {
  return {
    priority: has(m, 'priority') ? r.int(val(m, 'priority'), `${p}.priority`, 1, 254) ?? base.priority : base.priority,
    state: has(m, 'state') ? r.oneOf(val(m, 'state'), `${p}.state`, ['MASTER', 'BACKUP'] as const) ?? base.state : base.state,
  };
}

/**
 * `vrrp: { priority: 150, state: MASTER }` for every instance, and/or per instance by name:
 * `vrrp: { VI_WAN: { priority: 150, state: MASTER }, VI_PROV: { priority: 100 } }` (instance keys default to
 * the machine-wide values, then 100/BACKUP). Instance names are checked against the role in validate.ts.
 */
function vrrp(r: Reader, node: unknown, p: string, out: Machine, locs: Locs): void {
  if (!isMap(node)) { r.err(node, p, 'must be a mapping: { priority, state } and/or { <instance>: { priority, state } }'); return; }
  const pairs = (node as YAMLMap).items.map((pair) => ({ key: isScalar(pair.key) ? String(pair.key.value) : '', pair }));
  const wide = pairs.filter((x) => x.key === 'priority' || x.key === 'state');
  const fallback: VrrpSetting = { priority: 100, state: 'BACKUP' };
  if (wide.length) out.vrrp = vrrpSetting(r, new Map(wide.map((x) => [x.key, x.pair])), p, fallback);
  for (const { key, pair } of pairs) {
    if (key === 'priority' || key === 'state') continue;
    const ip = `${p}.${key}`;
    locs.set(`${r.file}#${ip}`, r.loc(pair.key));
    const im = r.map(pair.value, ip, ['priority', 'state']);
    if (!im) continue;
    out.vrrpInstances = { ...out.vrrpInstances, [key]: vrrpSetting(r, im, ip, out.vrrp ?? fallback) };
  }
}

function machine(r: Reader, node: unknown, p: string, locs: Locs): Machine | undefined {
  const m = r.map(node, p, MACHINE_KEYS);
  if (!m) return undefined;
  for (const k of ['host', 'mac', 'role', 'ip', 'boot_once', 'sites', 'vrrp']) if (has(m, k)) locs.set(`${r.file}#${p}.${k}`, r.loc(val(m, k)));
  for (const k of ['host', 'mac', 'role', 'ip']) if (!has(m, k)) r.err(node, p, `missing required key "${k}"`);
  const out: Machine = {
    host: has(m, 'host') ? r.str(val(m, 'host'), `${p}.host`) ?? '' : '',
    macs: has(m, 'mac') ? macs(r, val(m, 'mac'), p, locs) : [],
    role: has(m, 'role') ? r.str(val(m, 'role'), `${p}.role`) ?? '' : '',
    ip: has(m, 'ip') ? ipv4(r, val(m, 'ip'), `${p}.ip`) ?? '' : '',
    addresses: has(m, 'addresses') ? addresses(r, val(m, 'addresses'), `${p}.addresses`, locs) : {},
    loaders: has(m, 'loaders') ? loaders(r, val(m, 'loaders'), `${p}.loaders`) : {},
    confirmWipe: has(m, 'confirm_wipe') ? r.bool(val(m, 'confirm_wipe'), `${p}.confirm_wipe`) ?? false : false,
    files: has(m, 'files') ? parseFiles(r, val(m, 'files'), `${p}.files`) : [],
    source: { file: r.file, line: r.loc(node).line },
  };
  if (out.host && !HOST_RE.test(out.host)) r.err(val(m, 'host'), `${p}.host`, `"${out.host}" is not a valid host name (letters, digits, hyphens)`);
  if (has(m, 'vrrp')) vrrp(r, val(m, 'vrrp'), `${p}.vrrp`, out, locs);
  if (has(m, 'sites')) out.sites = r.strList(val(m, 'sites'), `${p}.sites`);
  const sitesNode = val(m, 'sites') as { items?: unknown[] } | undefined;
  sitesNode?.items?.forEach((n, i) => locs.set(`${r.file}#${p}.sites[${i}]`, r.loc(n)));
  if (has(m, 'cmdline')) out.cmdline = r.str(val(m, 'cmdline'), `${p}.cmdline`);
  if (has(m, 'boot')) out.boot = r.oneOf(val(m, 'boot'), `${p}.boot`, BOOT);
  if (has(m, 'boot_once')) out.bootOnce = r.str(val(m, 'boot_once'), `${p}.boot_once`);
  if (has(m, 'bmc')) {
    const b = parseBmc(r, val(m, 'bmc'), `${p}.bmc`, locs);
    if (b) out.bmc = b;
  }
  if (has(m, 'uuid')) {
    const u = r.str(val(m, 'uuid'), `${p}.uuid`);
    if (u !== undefined && !UUID_RE.test(u)) r.err(val(m, 'uuid'), `${p}.uuid`, `"${u}" is not a UUID`);
    else if (u) out.uuid = u.toLowerCase();
  }
  return out;
}

const HOST_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i;
// A MAC already in normaliseMac's form (lower case, colons) is its own normal form.
const NORMAL_MAC = /^[0-9a-f]{2}(?::[0-9a-f]{2}){5}$/;

/**
 * A machine read straight from its plain values (plainMachines), when it is one that machine() reads
 * without a single issue and with only the keys handled here; undefined leaves it to machine() (its
 * nodes then), which also says what is wrong with it. Builds the very object machine() would (same
 * keys in the same order: content hashes serialise machines), but records no positions (locs): a
 * caller that meets any issue reads the file again with machine() for its messages (parseSources).
 */
function directMachine(pm: PlainMap, file: string, line: number): Machine | undefined {
  let host: string | undefined;
  let macList: string[] | undefined;
  let ip: string | undefined;
  let addresses: Record<string, string> | undefined;
  let vrrpWide: VrrpSetting | undefined;
  let sites: string[] | undefined;
  let boot: Machine['boot'];
  let confirmWipe: boolean | undefined;
  let uuid: string | undefined;
  const texts: { role?: string; cmdline?: string; boot_once?: string } = {};
  const { keys, values } = pm;
  for (let k = 0; k < keys.length; k++) {
    const key = keys[k]!;
    const v = values[k]!;
    if (keys.indexOf(key) !== k) return undefined; // a duplicate key is an issue
    switch (key) {
      case 'host':
        if (typeof v !== 'string' || (v !== '' && !HOST_RE.test(v))) return undefined;
        host = v;
        break;
      case 'mac': {
        if (v instanceof PlainMap) return undefined;
        const items = Array.isArray(v) ? v : [v];
        if (items.length === 0) return undefined;
        macList = [];
        for (const x of items) {
          const mac = typeof x === 'string' ? (NORMAL_MAC.test(x) ? x : normaliseMac(x)) : undefined;
          if (!mac) return undefined;
          macList.push(mac);
        }
        break;
      }
      case 'role': case 'cmdline': case 'boot_once':
        if (typeof v !== 'string') return undefined;
        texts[key] = v;
        break;
      case 'ip':
        if (typeof v !== 'string' || !isIPv4(v)) return undefined;
        ip = v;
        break;
      case 'addresses':
        if (!(v instanceof PlainMap)) return undefined;
        addresses = {};
        for (let j = 0; j < v.keys.length; j++) {
          const net = v.keys[j]!;
          const a = v.values[j];
          if (typeof a !== 'string' || !isIPv4(a) || net === '__proto__') return undefined;
          addresses[net] = a;
        }
        break;
      case 'vrrp': {
        // Only the machine-wide form ({ priority, state }, each once); per-instance settings go to machine().
        if (!(v instanceof PlainMap)) return undefined;
        let priority: number | undefined;
        let state: VrrpSetting['state'] | undefined;
        for (let j = 0; j < v.keys.length; j++) {
          const x = v.values[j];
          if (v.keys[j] === 'priority' && priority === undefined && typeof x === 'number' && Number.isInteger(x) && x >= 1 && x <= 254) priority = x;
          else if (v.keys[j] === 'state' && state === undefined && (x === 'MASTER' || x === 'BACKUP')) state = x;
          else return undefined;
        }
        if (v.keys.length) vrrpWide = { priority: priority ?? 100, state: state ?? 'BACKUP' };
        break;
      }
      case 'sites':
        if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) return undefined;
        sites = v as string[];
        break;
      case 'boot':
        if (typeof v !== 'string' || !(BOOT as readonly string[]).includes(v)) return undefined;
        boot = v as Machine['boot'];
        break;
      case 'confirm_wipe':
        if (typeof v !== 'boolean') return undefined;
        confirmWipe = v;
        break;
      case 'uuid':
        if (typeof v !== 'string' || !UUID_RE.test(v)) return undefined;
        uuid = v.toLowerCase();
        break;
      default: // loaders, files, bmc, an unknown key: machine() reads (or refuses) them
        return undefined;
    }
  }
  const { role, cmdline, boot_once: bootOnce } = texts;
  if (host === undefined || macList === undefined || role === undefined || ip === undefined) return undefined;
  // machine()'s key order: required and defaulted keys, then the optional ones as it sets them.
  const out: Machine = { host, macs: macList, role, ip, addresses: addresses ?? {}, loaders: {}, confirmWipe: confirmWipe ?? false, files: [], source: { file, line } };
  if (vrrpWide) out.vrrp = vrrpWide;
  if (sites) out.sites = sites;
  if (cmdline !== undefined) out.cmdline = cmdline;
  if (boot !== undefined) out.boot = boot;
  if (bootOnce !== undefined) out.bootOnce = bootOnce;
  if (uuid !== undefined) out.uuid = uuid;
  return out;
}

/**
 * machines.yaml from its plain values (fast-machines.ts plainMachines): each machine read directly when
 * directMachine can, else by machine() from its nodes. Positions (locs) are only recorded for the latter.
 */
export function directMachines(r: Reader, plain: PlainMachines, locs: Locs): Machine[] {
  const out: Machine[] = [];
  for (let i = 0; i < plain.items.length; i++) {
    const m = directMachine(plain.items[i]!, r.file, plain.lines[i]!) ?? machine(r, plain.node(i), `machines[${i}]`, locs);
    if (m) out.push(m);
  }
  return out;
}

export function parseMachines(r: Reader, root: unknown, locs: Locs): Machine[] {
  const top = r.map(root, '', ['machines']);
  const list = r.list(val(top, 'machines'), 'machines') ?? [];
  return list.flatMap((n, i) => machine(r, n, `machines[${i}]`, locs) ?? []);
}

export function parseSecrets(r: Reader, root: unknown): Record<string, string> {
  if (root === null || root === undefined) return {};
  if (!isMap(root)) { r.err(root, '(root)', 'must be a mapping of secret name to value'); return {}; }
  const out: Record<string, string> = {};
  for (const pair of (root as YAMLMap).items) {
    const name = isScalar(pair.key) ? String(pair.key.value) : '';
    const v = r.str(pair.value, name);
    if (v !== undefined) out[name] = v;
  }
  return out;
}
