/**
 * Rules across files: names that must resolve (roles, images, sites, networks, secrets), values that
 * must be unique (MAC, IP, host, VRRP router id per interface), addresses that must lie in a network.
 * Every problem is collected; nothing here stops at the first.
 */
import type { ProfileIssue } from '../errors.js';
import type { DiscoveryConfig, Image, IpRange, Machine, Network, Role, Site, VirtualSite } from './types.js';
import type { Locs } from './parse.js';
import type { Loc } from './read.js';
import { inCidr } from './ip.js';
import { incompleteMacs } from './parse-machines.js';

export interface Parsed {
  site: Site;
  siteFile: string;
  networks: Network[];
  images: Record<string, Image>;
  sites: Record<string, VirtualSite>;
  roles: Record<string, Role>;
  machines: Machine[];
  machinesFile: string;
  secrets: Record<string, string>;
  discovery: DiscoveryConfig;
  locs: Locs;
}

class Issues {
  constructor(readonly out: ProfileIssue[], private readonly locs: Locs) {}
  at(file: string, path: string, message: string, fallback?: Loc): void {
    const loc = this.locs.get(`${file}#${path}`) ?? fallback ?? { file, line: 1, col: 1 };
    this.out.push({ file: loc.file, line: loc.line, col: loc.col, path, message });
  }
}

// Each machine's position in the list, built once per parse: indexOf per machine made validation
// quadratic (17% of a 100,000-machine validate).
const positions = new WeakMap<Parsed, Map<Machine, number>>();

function mIdx(p: Parsed, m: Machine): string {
  let at = positions.get(p);
  if (!at) { at = new Map(p.machines.map((x, i) => [x, i])); positions.set(p, at); }
  return `machines[${at.get(m) ?? -1}]`;
}

function machineLoc(m: Machine): Loc {
  return { file: m.source.file, line: m.source.line, col: 1 };
}

function uniqueness(p: Parsed, is: Issues): void {
  const hosts = new Map<string, Machine>();
  const ips = new Map<string, Machine>();
  const macs = new Map<string, Machine>();
  // Paths and positions are worked out only for a machine with something to report (100,000 clean
  // machines made 300,000 strings and lookups for nothing).
  for (const m of p.machines) {
    const prevHost = hosts.get(m.host);
    if (m.host && prevHost) is.at(m.source.file, `${mIdx(p, m)}.host`, `duplicate host name "${m.host}" (also at ${prevHost.source.file}:${prevHost.source.line})`, machineLoc(m));
    else if (m.host) hosts.set(m.host, m);
    for (let i = 0; i < m.macs.length; i++) {
      const mac = m.macs[i]!;
      const prev = macs.get(mac);
      if (!prev) { macs.set(mac, m); continue; }
      const path = mIdx(p, m);
      const loc = p.locs.get(`${m.source.file}#${path}.mac#${i}`) ?? machineLoc(m);
      const macPath = m.macs.length === 1 ? `${path}.mac` : `${path}.mac[${i}]`;
      if (prev === m) is.at(m.source.file, macPath, `duplicate MAC ${mac} (listed twice for ${m.host})`, loc);
      else is.at(m.source.file, macPath, `duplicate MAC ${mac} (also ${prev.host} at ${prev.source.file}:${prev.source.line})`, loc);
    }
    const own = (ip: string, ipPath: () => string) => {
      if (!ip) return;
      const prev = ips.get(ip);
      if (prev) is.at(m.source.file, ipPath(), `duplicate IP ${ip} (also ${prev.host} at ${prev.source.file}:${prev.source.line})`, machineLoc(m));
      else ips.set(ip, m);
    };
    own(m.ip, () => `${mIdx(p, m)}.ip`);
    for (const n in m.addresses) own(m.addresses[n]!, () => `${mIdx(p, m)}.addresses.${n}`);
  }
}

function networkOf(p: Parsed, ip: string): Network | undefined {
  return p.networks.find((n) => n.cidr && inCidr(ip, n.cidr));
}

function roleRefs(p: Parsed, is: Issues): void {
  for (const role of Object.values(p.roles)) {
    const f = role.source.file;
    const img = (path: string, name: string | undefined, kinds: string[]) => {
      if (name === undefined) return;
      const image = p.images[name];
      if (!image) is.at(f, path, `unknown image "${name}" (images in ${p.siteFile}: ${Object.keys(p.images).join(', ') || 'none'})`);
      else if (!kinds.includes(image.kind)) is.at(f, path, `image "${name}" is a ${image.kind}, expected ${kinds.join(' or ')}`);
    };
    img('kernel', role.kernel, ['kernel', 'binary']);
    for (const [fw, name] of Object.entries(role.kernels)) img(`kernels.${fw}`, name, ['kernel', 'binary']);
    role.initrd.forEach((n, i) => img(`initrd[${i}]`, n, ['initrd']));
    img('rootfs', role.rootfs, ['rootfs']);
    role.sites.forEach((s, i) => { if (!p.sites[s]) is.at(f, `sites[${i}]`, `unknown site "${s}"`); });
    role.network.vlans.forEach((v, i) => {
      if (!p.networks.some((n) => n.name === v.network)) is.at(f, `network.vlans[${i}].network`, `unknown network "${v.network}"`);
    });
    const k = role.keepalived;
    if (!k) continue;
    k.virtualServers.forEach((s, i) => { if (!p.sites[s]) is.at(f, `keepalived.virtual_servers[${i}]`, `unknown site "${s}"`); });
    k.vrrp.forEach((v, i) => {
      if (v.authSecret !== undefined && p.secrets[v.authSecret] === undefined) is.at(f, `keepalived.vrrp[${i}].auth_secret`, `secret "${v.authSecret}" is not defined in secrets.yaml`);
      v.vips.forEach((vip, j) => {
        const ip = vip.split('/')[0] ?? '';
        if (!networkOf(p, ip)) is.at(f, `keepalived.vrrp[${i}].vips[${j}]`, `VIP ${vip} is outside every declared network`);
      });
    });
  }
}

function vrrpIds(p: Parsed, is: Issues): void {
  const seen = new Map<string, string>();
  for (const role of Object.values(p.roles)) {
    role.keepalived?.vrrp.forEach((v, i) => {
      const key = `${v.interface}/${v.virtualRouterId}`;
      const where = `${role.source.file} ${v.name}`;
      const prev = seen.get(key);
      if (prev) is.at(role.source.file, `keepalived.vrrp[${i}].virtual_router_id`, `duplicate virtual_router_id ${v.virtualRouterId} on interface ${v.interface} (also ${prev})`);
      else seen.set(key, where);
    });
  }
}

function machineRefs(p: Parsed, is: Issues): void {
  for (const m of p.machines) {
    const path = () => mIdx(p, m); // built only for a message
    const f = m.source.file;
    const fb = machineLoc(m);
    const role = p.roles[m.role];
    if (m.role && !role) is.at(f, `${path()}.role`, `unknown role "${m.role}" (roles: ${Object.keys(p.roles).sort().join(', ')})`, fb);
    const once = m.bootOnce !== undefined ? p.roles[m.bootOnce] : undefined;
    if (m.bootOnce !== undefined && !once) is.at(f, `${path()}.boot_once`, `unknown role "${m.bootOnce}"`, fb);
    for (const r of [role, once]) {
      if (r?.destructive && !m.confirmWipe) is.at(f, r === once ? `${path()}.boot_once` : `${path()}.role`, `"${r.name}" is destructive: set confirm_wipe: true on this machine to allow it`, fb);
      for (const v of r?.network.vlans ?? []) {
        if (m.addresses[v.network] === undefined && p.networks.some((n) => n.name === v.network)) is.at(f, `${path()}.role`, `role "${r!.name}" puts VLAN ${v.id} on network ${v.network}: ${m.host} needs addresses.${v.network}`, fb);
      }
      if (r?.network.bond && m.macs.length > 0 && m.macs.length < 2 && !incompleteMacs.has(m.macs)) is.at(f, `${path()}.mac`, `role "${r.name}" bonds ${r.network.bond.name}, which needs at least two slave NICs; ${m.host} has ${m.macs.length}`, fb);
    }
    m.sites?.forEach((s, i) => { if (!p.sites[s]) is.at(f, `${path()}.sites[${i}]`, `unknown site "${s}"`, fb); });
    if (m.ip && !networkOf(p, m.ip)) is.at(f, `${path()}.ip`, `${m.ip} is outside every declared network`, fb);
    for (const [net, ip] of Object.entries(m.addresses)) {
      const n = p.networks.find((x) => x.name === net);
      if (!n) is.at(f, `${path()}.addresses.${net}:key`, `unknown network "${net}"`, fb);
      else if (!inCidr(ip, n.cidr)) is.at(f, `${path()}.addresses.${net}`, `${ip} is outside network ${net} (${n.cidr})`, fb);
    }
    m.files.forEach((file, i) => {
      if (file.secret !== undefined && p.secrets[file.secret] === undefined) is.at(f, `${path()}.files[${i}].secret`, `secret "${file.secret}" is not defined in secrets.yaml`, fb);
    });
    if (m.bmc && p.secrets[m.bmc.passwordSecret] === undefined) is.at(f, `${path()}.bmc.password`, `secret "${m.bmc.passwordSecret}" is not defined in secrets.yaml`, fb);
  }
}

/**
 * Machine keys that only mean something for some roles are errors on the others, with the reason, instead of
 * being silently ignored: `vrrp` needs a role running keepalived VRRP (and names only its instances); `sites`
 * makes a machine a real server, which a keepalived (load-balancer) role never is.
 */
function machineRoleKeys(p: Parsed, is: Issues): void {
  for (const m of p.machines) {
    const role = p.roles[m.role];
    if (!role) continue;
    const path = () => mIdx(p, m); // built only for a message
    const f = m.source.file;
    const fb = machineLoc(m);
    const instances = role.keepalived?.vrrp.map((v) => v.name) ?? [];
    // A maintenance role is a detour: the box keeps its keys for the role it returns to.
    if (role.kind !== 'service') continue;
    if ((m.vrrp || m.vrrpInstances) && instances.length === 0) {
      is.at(f, `${path()}.vrrp`, `role "${role.name}" runs no keepalived VRRP instance, so vrrp means nothing for ${m.host} (only roles with keepalived.vrrp use it)`, fb);
    } else {
      for (const name of Object.keys(m.vrrpInstances ?? {})) {
        if (!instances.includes(name)) is.at(f, `${path()}.vrrp.${name}`, `role "${role.name}" has no VRRP instance "${name}" (it has: ${instances.join(', ')})`, fb);
      }
    }
    // An empty list claims nothing (the spare's `sites: []` can stay when it becomes a load balancer).
    if (m.sites?.length && role.keepalived) {
      is.at(f, `${path()}.sites`, `sites means nothing for role "${role.name}": it runs keepalived and balances sites (keepalived.virtual_servers); only machines of a role without keepalived are real servers of a site`, fb);
    }
  }
}

function siteRefs(p: Parsed, is: Issues): void {
  for (const s of Object.values(p.sites)) {
    if (s.vip && !networkOf(p, s.vip)) is.at(p.siteFile, `sites.${s.name}.vip`, `VIP ${s.vip} is outside every declared network`);
  }
  const u = p.site.unknown;
  if (u.policy === 'boot' && u.target && !p.roles[u.target]) is.at(p.siteFile, 'site.unknown.target', `unknown role "${u.target}"`);
  if (u.policy === 'discover' && !p.roles[u.target ?? 'discover']) is.at(p.siteFile, u.target ? 'site.unknown.target' : 'site.unknown', `policy discover boots role "${u.target ?? 'discover'}", which is not defined (roles/discover.yaml is bundled)`);
  for (const role of Object.values(p.roles)) {
    role.files.forEach((file, i) => {
      if (file.secret !== undefined && p.secrets[file.secret] === undefined) is.at(role.source.file, `files[${i}].secret`, `secret "${file.secret}" is not defined in secrets.yaml`);
    });
  }
}

export function validate(p: Parsed, out: ProfileIssue[]): void {
  const is = new Issues(out, p.locs);
  uniqueness(p, is);
  roleRefs(p, is);
  vrrpIds(p, is);
  machineRefs(p, is);
  machineRoleKeys(p, is);
  siteRefs(p, is);
  discoveryRefs(p, is);
}

/** Rules name a role that exists and give addresses inside a declared network. */
function discoveryRefs(p: Parsed, is: Issues): void {
  const inNet = (path: string, r: IpRange | undefined) => {
    if (!r) return;
    if (!networkOf(p, r.start) || networkOf(p, r.start) !== networkOf(p, r.end)) is.at(p.siteFile, path, `${r.start}–${r.end} is not inside one declared network`);
  };
  inNet('discovery.addresses', p.discovery.addresses);
  const b = p.discovery.bmc;
  if (b && p.secrets[b.passwordSecret] === undefined) is.at(p.siteFile, 'discovery.bmc.password', `secret "${b.passwordSecret}" is not defined in secrets.yaml`);
  p.discovery.rules.forEach((rule, i) => {
    const path = `discovery.rules[${i}]`;
    if (rule.role && !p.roles[rule.role]) is.at(p.siteFile, `${path}.role`, `unknown role "${rule.role}" (roles: ${Object.keys(p.roles).sort().join(', ')})`);
    inNet(`${path}.addresses`, rule.addresses);
  });
}
