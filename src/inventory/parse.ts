/**
 * Per-file parsing: YAML nodes → typed inventory pieces, recording every structural problem (unknown
 * key, wrong type, bad value) with its position. Cross-file rules live in validate.ts.
 */
import { isMap, isScalar, type YAMLMap } from 'yaml';
import type { Firmware } from '../boot/facts.js';
import type {
  BootMethod, ExtraFile, HealthCheck, Image, Network, Site, VirtualSite,
} from './types.js';
import { has, type Loc, type Reader, val } from './read.js';
import { isIPv4, parseCidr } from './ip.js';

export type Locs = Map<string, Loc>; // "<file>#<path>" → where, for cross-file messages

export const BOOT: readonly BootMethod[] = ['ipxe', 'pxelinux', 'grub'];
const FIRMWARES: readonly Firmware[] = ['bios', 'uefi-ia32', 'uefi-x64', 'uefi-arm32', 'uefi-arm64', 'uefi-http-x64', 'uefi-http-arm64'];

export function ipv4(r: Reader, node: unknown, path: string): string | undefined {
  const s = r.str(node, path);
  if (s !== undefined && !isIPv4(s)) r.err(node, path, `"${s}" is not an IPv4 address`);
  return s !== undefined && isIPv4(s) ? s : undefined;
}

export function loaders(r: Reader, node: unknown, path: string): Partial<Record<Firmware, string>> {
  const m = r.map(node, path, FIRMWARES);
  const out: Partial<Record<Firmware, string>> = {};
  for (const fw of FIRMWARES) if (has(m, fw)) { const s = r.str(val(m, fw), `${path}.${fw}`); if (s) out[fw] = s; }
  return out;
}

function mode(r: Reader, node: unknown, path: string): number {
  // Modes are written as octal strings ("0644"); a bare 644 in YAML 1.2 is decimal and almost surely a mistake.
  if (isScalar(node) && typeof node.value === 'string' && /^0?[0-7]{3,4}$/.test(node.value)) return parseInt(node.value, 8);
  r.err(node, path, 'must be an octal mode string like "0644"');
  return 0o644;
}

export function parseFiles(r: Reader, node: unknown, path: string): ExtraFile[] {
  return (r.list(node, path) ?? []).flatMap((n, i) => {
    const p = `${path}[${i}]`;
    const m = r.map(n, p, ['path', 'mode', 'content', 'secret']);
    if (!m) return [];
    const file = r.str(val(m, 'path'), `${p}.path`);
    if (file !== undefined && !file.startsWith('/')) r.err(val(m, 'path'), `${p}.path`, `"${file}" must be an absolute path`);
    if (has(m, 'content') === has(m, 'secret')) r.err(n, p, 'needs exactly one of content or secret');
    const f: ExtraFile = { path: file ?? '', mode: has(m, 'mode') ? mode(r, val(m, 'mode'), `${p}.mode`) : has(m, 'secret') ? 0o600 : 0o644 };
    if (has(m, 'content')) f.content = r.str(val(m, 'content'), `${p}.content`) ?? '';
    if (has(m, 'secret')) f.secret = r.str(val(m, 'secret'), `${p}.secret`);
    return [f];
  });
}

export function parseSite(r: Reader, node: unknown): Site {
  const m = r.map(node, 'site', ['domain', 'server', 'http_port', 'boot', 'loaders', 'unknown', 'syslog', 'timezone']);
  const site: Site = {
    domain: (has(m, 'domain') && r.str(val(m, 'domain'), 'site.domain')) || 'local',
    server: ipv4(r, val(m, 'server'), 'site.server') ?? '0.0.0.0',
    httpPort: has(m, 'http_port') ? r.int(val(m, 'http_port'), 'site.http_port', 1, 65535) ?? 8080 : 8080,
    boot: has(m, 'boot') ? r.oneOf(val(m, 'boot'), 'site.boot', BOOT) ?? 'ipxe' : 'ipxe',
    loaders: has(m, 'loaders') ? loaders(r, val(m, 'loaders'), 'site.loaders') : {},
    unknown: { policy: 'ignore' },
  };
  if (has(m, 'unknown')) {
    const u = r.map(val(m, 'unknown'), 'site.unknown', ['policy', 'target']);
    site.unknown = { policy: r.oneOf(val(u, 'policy'), 'site.unknown.policy', ['ignore', 'boot', 'discover'] as const) ?? 'ignore' };
    if (has(u, 'target')) site.unknown.target = r.str(val(u, 'target'), 'site.unknown.target');
    if (site.unknown.policy === 'boot' && !site.unknown.target) r.err(val(m, 'unknown'), 'site.unknown', 'policy boot needs a target role');
  }
  if (has(m, 'syslog')) {
    const s = r.map(val(m, 'syslog'), 'site.syslog', ['host', 'port', 'protocol']);
    site.syslog = {
      host: ipv4(r, val(s, 'host'), 'site.syslog.host') ?? '',
      port: has(s, 'port') ? r.int(val(s, 'port'), 'site.syslog.port', 1, 65535) ?? 514 : 514,
      protocol: has(s, 'protocol') ? r.oneOf(val(s, 'protocol'), 'site.syslog.protocol', ['udp', 'tcp'] as const) ?? 'udp' : 'udp',
    };
  }
  if (has(m, 'timezone')) site.timezone = r.str(val(m, 'timezone'), 'site.timezone');
  return site;
}

export function parseNetworks(r: Reader, node: unknown, locs: Locs): Network[] {
  return (r.list(node, 'networks') ?? []).flatMap((n, i) => {
    const p = `networks[${i}]`;
    const m = r.map(n, p, ['name', 'cidr', 'gateway', 'dns', 'vlan', 'pool']);
    if (!m) return [];
    const cidrText = r.str(val(m, 'cidr'), `${p}.cidr`) ?? '';
    const c = parseCidr(cidrText);
    if (cidrText && !c) r.err(val(m, 'cidr'), `${p}.cidr`, `"${cidrText}" is not a network in CIDR form (like 10.0.0.0/24)`);
    const net: Network = {
      name: r.str(val(m, 'name'), `${p}.name`) ?? '', cidr: cidrText, address: c?.address ?? '', prefix: c?.prefix ?? 0,
      dns: has(m, 'dns') ? r.strList(val(m, 'dns'), `${p}.dns`) : [],
    };
    locs.set(`${r.file}#network:${net.name}`, r.loc(n));
    if (has(m, 'gateway')) net.gateway = ipv4(r, val(m, 'gateway'), `${p}.gateway`);
    if (has(m, 'vlan')) net.vlan = r.int(val(m, 'vlan'), `${p}.vlan`, 1, 4094);
    if (has(m, 'pool')) {
      const pm = r.map(val(m, 'pool'), `${p}.pool`, ['start', 'end']);
      net.pool = { start: ipv4(r, val(pm, 'start'), `${p}.pool.start`) ?? '', end: ipv4(r, val(pm, 'end'), `${p}.pool.end`) ?? '' };
    }
    return [net];
  });
}

export function parseImages(r: Reader, node: unknown): Record<string, Image> {
  if (!isMap(node)) { r.err(node, 'images', 'must be a mapping of image name to {kind, path}'); return {}; }
  const out: Record<string, Image> = {};
  for (const pair of (node as YAMLMap).items) {
    const name = isScalar(pair.key) ? String(pair.key.value) : '';
    const m = r.map(pair.value, `images.${name}`, ['kind', 'path']);
    out[name] = {
      name, kind: r.oneOf(val(m, 'kind'), `images.${name}.kind`, ['kernel', 'initrd', 'rootfs', 'loader', 'binary'] as const) ?? 'binary',
      path: r.str(val(m, 'path'), `images.${name}.path`) ?? '',
    };
  }
  return out;
}

function health(r: Reader, node: unknown, p: string): HealthCheck {
  const m = r.map(node, p, ['type', 'path', 'status', 'timeout']);
  const h: HealthCheck = { type: r.oneOf(val(m, 'type'), `${p}.type`, ['HTTP_GET', 'TCP_CHECK'] as const) ?? 'TCP_CHECK', timeout: has(m, 'timeout') ? r.int(val(m, 'timeout'), `${p}.timeout`, 1, 300) ?? 3 : 3 };
  if (has(m, 'path')) h.path = r.str(val(m, 'path'), `${p}.path`);
  if (has(m, 'status')) h.status = r.int(val(m, 'status'), `${p}.status`, 100, 599);
  if (h.type === 'HTTP_GET' && !h.path) r.err(node, p, 'HTTP_GET needs a path');
  return h;
}

export function parseSites(r: Reader, node: unknown, locs: Locs): Record<string, VirtualSite> {
  if (!isMap(node)) { r.err(node, 'sites', 'must be a mapping of site name to virtual server'); return {}; }
  const out: Record<string, VirtualSite> = {};
  for (const pair of (node as YAMLMap).items) {
    const name = isScalar(pair.key) ? String(pair.key.value) : '';
    const p = `sites.${name}`;
    const m = r.map(pair.value, p, ['vip', 'port', 'protocol', 'lb_algo', 'lb_kind', 'real_port', 'health', 'sorry_server']);
    locs.set(`${r.file}#${p}.vip`, r.loc(val(m, 'vip')));
    const port = r.int(val(m, 'port'), `${p}.port`, 1, 65535) ?? 80;
    const s: VirtualSite = {
      name, vip: ipv4(r, val(m, 'vip'), `${p}.vip`) ?? '', port,
      protocol: has(m, 'protocol') ? r.oneOf(val(m, 'protocol'), `${p}.protocol`, ['TCP', 'UDP'] as const) ?? 'TCP' : 'TCP',
      lbAlgo: has(m, 'lb_algo') ? r.oneOf(val(m, 'lb_algo'), `${p}.lb_algo`, ['rr', 'wrr', 'lc', 'wlc', 'sh', 'dh', 'lblc'] as const) ?? 'wlc' : 'wlc',
      lbKind: has(m, 'lb_kind') ? r.oneOf(val(m, 'lb_kind'), `${p}.lb_kind`, ['DR', 'NAT', 'TUN'] as const) ?? 'DR' : 'DR',
      realPort: has(m, 'real_port') ? r.int(val(m, 'real_port'), `${p}.real_port`, 1, 65535) ?? port : port,
      health: has(m, 'health') ? health(r, val(m, 'health'), `${p}.health`) : { type: 'TCP_CHECK', timeout: 3 },
    };
    if (has(m, 'sorry_server')) s.sorryServer = r.str(val(m, 'sorry_server'), `${p}.sorry_server`);
    out[name] = s;
  }
  return out;
}

