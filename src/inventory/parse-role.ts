/** roles/<name>.yaml: one role per file. */
import type { Bond, KeepalivedSpec, NetworkLayout, Role, Vlan, VrrpInstance } from './types.js';
import { has, type Reader, val } from './read.js';
import { BOOT, loaders, parseFiles, type Locs } from './parse.js';

const BOND_MODES = ['active-backup', 'balance-rr', 'balance-xor', 'broadcast', '802.3ad', 'balance-tlb', 'balance-alb'] as const;

function bond(r: Reader, node: unknown, p: string): Bond {
  const m = r.map(node, p, ['name', 'mode', 'miimon', 'arp_interval', 'arp_ip_targets', 'primary']);
  const b: Bond = {
    name: has(m, 'name') ? r.str(val(m, 'name'), `${p}.name`) ?? 'bond0' : 'bond0',
    mode: has(m, 'mode') ? r.oneOf(val(m, 'mode'), `${p}.mode`, BOND_MODES) ?? 'active-backup' : 'active-backup',
    arpIpTargets: has(m, 'arp_ip_targets') ? r.strList(val(m, 'arp_ip_targets'), `${p}.arp_ip_targets`) : [],
  };
  if (has(m, 'miimon')) b.miimon = r.int(val(m, 'miimon'), `${p}.miimon`, 1, 60000);
  if (has(m, 'arp_interval')) b.arpInterval = r.int(val(m, 'arp_interval'), `${p}.arp_interval`, 1, 60000);
  if (has(m, 'primary')) b.primary = r.str(val(m, 'primary'), `${p}.primary`);
  // The kernel runs either MII or ARP monitoring: both set is a configuration the bonding driver rejects.
  if (b.miimon !== undefined && b.arpInterval !== undefined) r.err(node, p, 'set miimon or arp_interval, not both');
  if (b.arpInterval !== undefined && b.arpIpTargets.length === 0) r.err(node, p, 'arp_interval needs arp_ip_targets');
  if (b.miimon === undefined && b.arpInterval === undefined) b.miimon = 100;
  return b;
}

function network(r: Reader, node: unknown, p: string, locs: Locs): NetworkLayout {
  const m = r.map(node, p, ['bond', 'vlans']);
  const out: NetworkLayout = { vlans: [] };
  if (has(m, 'bond')) {
    out.bond = bond(r, val(m, 'bond'), `${p}.bond`);
    locs.set(`${r.file}#${p}.bond`, r.loc(val(m, 'bond')));
  }
  out.vlans = (has(m, 'vlans') ? r.list(val(m, 'vlans'), `${p}.vlans`) ?? [] : []).flatMap((n, i) => {
    const vm = r.map(n, `${p}.vlans[${i}]`, ['id', 'network']);
    if (!vm) return [];
    locs.set(`${r.file}#${p}.vlans[${i}].network`, r.loc(val(vm, 'network')));
    const v: Vlan = { id: r.int(val(vm, 'id'), `${p}.vlans[${i}].id`, 1, 4094) ?? 0, network: r.str(val(vm, 'network'), `${p}.vlans[${i}].network`) ?? '' };
    return [v];
  });
  return out;
}

function vrrp(r: Reader, node: unknown, p: string, locs: Locs): VrrpInstance | undefined {
  const m = r.map(node, p, ['name', 'interface', 'virtual_router_id', 'advert_int', 'garp_master_delay', 'vips', 'auth_secret', 'track_interfaces']);
  if (!m) return undefined;
  locs.set(`${r.file}#${p}.virtual_router_id`, r.loc(val(m, 'virtual_router_id')));
  const vips = r.strList(val(m, 'vips'), `${p}.vips`);
  const vipsNode = val(m, 'vips') as { items?: unknown[] } | undefined;
  vips.forEach((_, i) => locs.set(`${r.file}#${p}.vips[${i}]`, r.loc(vipsNode?.items?.[i])));
  const inst: VrrpInstance = {
    name: r.str(val(m, 'name'), `${p}.name`) ?? '',
    interface: r.str(val(m, 'interface'), `${p}.interface`) ?? '',
    virtualRouterId: r.int(val(m, 'virtual_router_id'), `${p}.virtual_router_id`, 1, 255) ?? 0,
    advertInt: has(m, 'advert_int') ? r.int(val(m, 'advert_int'), `${p}.advert_int`, 1, 255) ?? 1 : 1,
    garpMasterDelay: has(m, 'garp_master_delay') ? r.int(val(m, 'garp_master_delay'), `${p}.garp_master_delay`, 0, 255) ?? 5 : 5,
    vips,
    trackInterfaces: has(m, 'track_interfaces') ? r.strList(val(m, 'track_interfaces'), `${p}.track_interfaces`) : [],
  };
  if (has(m, 'auth_secret')) {
    inst.authSecret = r.str(val(m, 'auth_secret'), `${p}.auth_secret`);
    locs.set(`${r.file}#${p}.auth_secret`, r.loc(val(m, 'auth_secret')));
  }
  return inst;
}

function keepalived(r: Reader, node: unknown, p: string, locs: Locs): KeepalivedSpec {
  const m = r.map(node, p, ['vrrp', 'virtual_servers', 'router_id_prefix']);
  const spec: KeepalivedSpec = {
    vrrp: (has(m, 'vrrp') ? r.list(val(m, 'vrrp'), `${p}.vrrp`) ?? [] : []).flatMap((n, i) => vrrp(r, n, `${p}.vrrp[${i}]`, locs) ?? []),
    virtualServers: has(m, 'virtual_servers') ? r.strList(val(m, 'virtual_servers'), `${p}.virtual_servers`) : [],
  };
  const vsNode = val(m, 'virtual_servers') as { items?: unknown[] } | undefined;
  spec.virtualServers.forEach((_, i) => locs.set(`${r.file}#${p}.virtual_servers[${i}]`, r.loc(vsNode?.items?.[i])));
  if (has(m, 'router_id_prefix')) spec.routerIdPrefix = r.str(val(m, 'router_id_prefix'), `${p}.router_id_prefix`);
  return spec;
}

const ROLE_KEYS = ['name', 'kind', 'description', 'kernel', 'kernels', 'initrd', 'rootfs', 'cmdline', 'boot', 'loaders', 'network', 'keepalived', 'sites', 'files', 'destructive'];

export function parseRole(r: Reader, node: unknown, locs: Locs): Role | undefined {
  const m = r.map(node, '', ROLE_KEYS);
  if (!m) return undefined;
  for (const k of ['name', 'kernel', 'initrd', 'rootfs', 'sites']) if (has(m, k)) locs.set(`${r.file}#${k}`, r.loc(val(m, k)));
  const sitesNode = val(m, 'sites') as { items?: unknown[] } | undefined;
  sitesNode?.items?.forEach((n, i) => locs.set(`${r.file}#sites[${i}]`, r.loc(n)));
  const initrdNode = val(m, 'initrd') as { items?: unknown[] } | undefined;
  initrdNode?.items?.forEach((n, i) => locs.set(`${r.file}#initrd[${i}]`, r.loc(n)));
  const kernelsNode = val(m, 'kernels') as { items?: Array<{ key: unknown; value: unknown }> } | undefined;
  kernelsNode?.items?.forEach((pair) => {
    const key = (pair.key as { value?: unknown } | null)?.value;
    if (typeof key === 'string') locs.set(`${r.file}#kernels.${key}`, r.loc(pair.value));
  });
  const role: Role = {
    name: r.str(val(m, 'name'), 'name') ?? '',
    kind: has(m, 'kind') ? r.oneOf(val(m, 'kind'), 'kind', ['service', 'maintenance'] as const) ?? 'service' : 'service',
    description: has(m, 'description') ? r.str(val(m, 'description'), 'description') ?? '' : '',
    kernel: r.str(val(m, 'kernel'), 'kernel') ?? '',
    kernels: has(m, 'kernels') ? loaders(r, val(m, 'kernels'), 'kernels') : {},
    initrd: has(m, 'initrd') ? r.strList(val(m, 'initrd'), 'initrd', true) : [],
    cmdline: has(m, 'cmdline') ? r.str(val(m, 'cmdline'), 'cmdline') ?? '' : '',
    loaders: has(m, 'loaders') ? loaders(r, val(m, 'loaders'), 'loaders') : {},
    network: has(m, 'network') ? network(r, val(m, 'network'), 'network', locs) : { vlans: [] },
    sites: has(m, 'sites') ? r.strList(val(m, 'sites'), 'sites') : [],
    files: has(m, 'files') ? parseFiles(r, val(m, 'files'), 'files') : [],
    destructive: has(m, 'destructive') ? r.bool(val(m, 'destructive'), 'destructive') ?? false : false,
    source: { file: r.file, line: r.loc(node).line },
  };
  if (has(m, 'rootfs')) role.rootfs = r.str(val(m, 'rootfs'), 'rootfs');
  if (has(m, 'boot')) role.boot = r.oneOf(val(m, 'boot'), 'boot', BOOT);
  if (has(m, 'keepalived')) role.keepalived = keepalived(r, val(m, 'keepalived'), 'keepalived', locs);
  return role;
}
