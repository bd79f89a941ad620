/** A minimal inventory for planBoot tables: built in code so the decision is tested apart from the loader. */
import type { Inventory, Machine, Role, Site } from '../../../src/inventory/types.js';

export function role(name: string, extra: Partial<Role> = {}): Role {
  return {
    name, kind: 'service', description: name, kernel: 'kernel', kernels: {}, initrd: ['initrd'], rootfs: `${name}-base`,
    cmdline: 'console=ttyS0', loaders: {}, network: { vlans: [] }, sites: [], files: [], destructive: false,
    source: { file: `roles/${name}.yaml`, line: 1 }, ...extra,
  };
}

export function machine(host: string, mac: string, roleName: string, extra: Partial<Machine> = {}): Machine {
  return {
    host, macs: [mac], role: roleName, ip: '10.0.0.50', addresses: {}, loaders: {}, confirmWipe: false, files: [],
    source: { file: 'machines.yaml', line: 1 }, ...extra,
  };
}

export function inventory(machines: Machine[], roles: Role[], site: Partial<Site> = {}): Inventory {
  const byMac = new Map<string, Machine>();
  for (const m of machines) for (const mac of m.macs) byMac.set(mac, m);
  return {
    site: {
      domain: 'example', server: '10.0.0.1', httpPort: 8080, boot: 'ipxe', loaders: {},
      unknown: { policy: 'ignore' }, ...site,
    },
    networks: [], images: {}, sites: {},
    roles: Object.fromEntries(roles.map((r) => [r.name, r])),
    machines, secrets: {}, discovery: { rules: [] }, byMac,
    byHost: new Map(machines.map((m) => [m.host, m])),
    byIp: new Map(machines.map((m) => [m.ip, m])),
    profilesDir: '/profiles', version: 'test',
  };
}
