/**
 * The commissioning report: what the initramfs's `rolecast.action=discover` found on a box, as JSON.
 * Hand-validated rather than by a route schema, because every refusal must name the field
 * (`nics[1].mac: not a MAC address`) and the report comes from a shell script on unknown hardware:
 * each fact is optional (a VM has no BMC, a NIC may have no link), bounded, and typed strictly.
 */
import { normaliseMac } from '../boot/facts.js';
import { isIPv4 } from '../inventory/ip.js';

export interface SystemFacts { vendor?: string; product?: string; serial?: string; uuid?: string }
export interface CpuFacts { model?: string; sockets?: number; cores?: number; threads?: number }
export interface DiskFacts { name: string; bytes?: number; model?: string; serial?: string; rotational?: boolean }
export interface LldpFacts { chassis?: string; port?: string; system?: string; vlan?: number }
export interface NicFacts { name: string; mac: string; driver?: string; speedMbps?: number; link?: boolean; lldp?: LldpFacts }
export interface BmcFacts { address?: string; mac?: string }

export interface HardwareFacts {
  system: SystemFacts;
  cpu: CpuFacts;
  memoryMiB?: number;
  disks: DiskFacts[];
  nics: NicFacts[];
  bmc?: BmcFacts;
}

/** A refusal naming the field; HTTP turns it into 400 `{ code: E_BAD_REPORT, field, message }`. */
export class ReportError extends Error {
  constructor(readonly field: string, message: string) {
    super(`${field}: ${message}`);
  }
}

const MAX_STR = 256;
const MAX_DISKS = 256;
const MAX_NICS = 64;
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

type Obj = Record<string, unknown>;

const at = (field: string, key: string) => (field ? `${field}.${key}` : key);

function object(v: unknown, field: string, keys: readonly string[]): Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ReportError(field || '(body)', 'must be a JSON object');
  for (const k of Object.keys(v)) {
    if (!keys.includes(k)) throw new ReportError(at(field, k), `unknown field (allowed: ${keys.join(', ')})`);
  }
  return v as Obj;
}

/** Optional text: absent, null and "" all mean "the hardware did not say"; control characters are refused. */
function text(o: Obj, key: string, field: string): string | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new ReportError(at(field, key), 'must be a string');
  if (v.length > MAX_STR) throw new ReportError(at(field, key), `longer than ${MAX_STR} characters`);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(v)) throw new ReportError(at(field, key), 'contains control characters');
  const t = v.trim();
  return t === '' ? undefined : t;
}

function int(o: Obj, key: string, field: string, max = Number.MAX_SAFE_INTEGER): number | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max) throw new ReportError(at(field, key), `must be an integer 0–${max}`);
  return v;
}

function bool(o: Obj, key: string, field: string): boolean | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw new ReportError(at(field, key), 'must be true or false');
  return v;
}

function list(o: Obj, key: string, max: number): unknown[] {
  const v = o[key];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new ReportError(key, 'must be a list');
  if (v.length > max) throw new ReportError(key, `more than ${max} entries`);
  return v;
}

/** Drop undefined members so stored facts compare and print cleanly. */
function compact<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

function system(v: unknown): SystemFacts {
  if (v === undefined || v === null) return {};
  const o = object(v, 'system', ['vendor', 'product', 'serial', 'uuid']);
  const uuid = text(o, 'uuid', 'system');
  if (uuid !== undefined && !UUID_RE.test(uuid)) throw new ReportError('system.uuid', `"${uuid}" is not a UUID`);
  return compact({ vendor: text(o, 'vendor', 'system'), product: text(o, 'product', 'system'), serial: text(o, 'serial', 'system'), uuid: uuid?.toLowerCase() });
}

function cpu(v: unknown): CpuFacts {
  if (v === undefined || v === null) return {};
  const o = object(v, 'cpu', ['model', 'sockets', 'cores', 'threads']);
  return compact({ model: text(o, 'model', 'cpu'), sockets: int(o, 'sockets', 'cpu', 1024), cores: int(o, 'cores', 'cpu', 65536), threads: int(o, 'threads', 'cpu', 65536) });
}

function disk(v: unknown, i: number): DiskFacts {
  const f = `disks[${i}]`;
  const o = object(v, f, ['name', 'bytes', 'model', 'serial', 'rotational']);
  const name = text(o, 'name', f);
  if (!name || !/^[A-Za-z0-9._-]+$/.test(name)) throw new ReportError(`${f}.name`, 'must be a device name like vda or nvme0n1');
  return compact({ name, bytes: int(o, 'bytes', f), model: text(o, 'model', f), serial: text(o, 'serial', f), rotational: bool(o, 'rotational', f) });
}

function lldp(v: unknown, f: string): LldpFacts | undefined {
  if (v === undefined || v === null) return undefined;
  const o = object(v, f, ['chassis', 'port', 'system', 'vlan']);
  const out = compact({ chassis: text(o, 'chassis', f), port: text(o, 'port', f), system: text(o, 'system', f), vlan: int(o, 'vlan', f, 4094) });
  return Object.keys(out).length ? out : undefined;
}

function nic(v: unknown, i: number): NicFacts {
  const f = `nics[${i}]`;
  const o = object(v, f, ['name', 'mac', 'driver', 'speed_mbps', 'link', 'lldp']);
  const name = text(o, 'name', f);
  if (!name || !/^[A-Za-z0-9._@-]+$/.test(name)) throw new ReportError(`${f}.name`, 'must be an interface name like eth0');
  const raw = text(o, 'mac', f);
  const mac = raw === undefined ? undefined : normaliseMac(raw);
  if (!mac) throw new ReportError(`${f}.mac`, raw === undefined ? 'missing' : `"${raw}" is not a MAC address`);
  return compact({ name, mac, driver: text(o, 'driver', f), speedMbps: int(o, 'speed_mbps', f, 10_000_000), link: bool(o, 'link', f), lldp: lldp(o['lldp'], `${f}.lldp`) });
}

function bmc(v: unknown): BmcFacts | undefined {
  if (v === undefined || v === null) return undefined;
  const o = object(v, 'bmc', ['address', 'mac']);
  const address = text(o, 'address', 'bmc');
  // 0.0.0.0 is what an unconfigured BMC LAN channel reports: no address, not an address.
  if (address !== undefined && !isIPv4(address)) throw new ReportError('bmc.address', `"${address}" is not an IPv4 address`);
  const rawMac = text(o, 'mac', 'bmc');
  const mac = rawMac === undefined ? undefined : normaliseMac(rawMac);
  if (rawMac !== undefined && !mac) throw new ReportError('bmc.mac', `"${rawMac}" is not a MAC address`);
  const out = compact({ address: address === '0.0.0.0' ? undefined : address, mac });
  return Object.keys(out).length ? out : undefined;
}

const TOP = ['version', 'system', 'cpu', 'memory_mib', 'disks', 'nics', 'bmc'] as const;

/** Validate a parsed report body; throws ReportError naming the first bad field. */
export function parseReport(body: unknown): HardwareFacts {
  const o = object(body, '', TOP);
  if (o['version'] !== undefined && o['version'] !== 1) throw new ReportError('version', 'must be 1');
  const nics = list(o, 'nics', MAX_NICS).map(nic);
  const seen = new Set<string>();
  nics.forEach((n, i) => {
    if (seen.has(n.mac)) throw new ReportError(`nics[${i}].mac`, `${n.mac} is listed twice`);
    seen.add(n.mac);
  });
  return compact({
    system: system(o['system']),
    cpu: cpu(o['cpu']),
    memoryMiB: int(o, 'memory_mib', '', 1 << 30),
    disks: list(o, 'disks', MAX_DISKS).map(disk),
    nics,
    bmc: bmc(o['bmc']),
  });
}

/** Parse the raw body text: JSON syntax errors are refused with where they are. */
export function parseReportText(raw: string): HardwareFacts {
  let body: unknown;
  try {
    body = JSON.parse(raw);
  } catch (err) {
    throw new ReportError('(body)', `not JSON: ${(err as Error).message}`);
  }
  return parseReport(body);
}
