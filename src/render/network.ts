/**
 * Network configuration for the booted system, in ifupdown and systemd-networkd forms. NICs are
 * eth0..ethN in the order of the machine's MACs (the role's cmdline sets net.ifnames=0); networkd
 * matches them by MAC as well. Bond: all NICs as slaves; VLANs ride on the bond (or on eth0).
 */
import { RenderError } from '../errors.js';
import type { Bond, Inventory, Network, ResolvedMachine } from '../inventory/types.js';
import { inCidr } from '../inventory/ip.js';
import type { RenderedFile } from './types.js';

interface Iface { dev: string; address: string; net: Network; primary: boolean }

function networkFor(inv: Inventory, ip: string, host: string): Network {
  const n = inv.networks.find((x) => inCidr(ip, x.cidr));
  if (!n) throw new RenderError(`${host}: address ${ip} is in no network`);
  return n;
}

export function nicNames(rm: ResolvedMachine): string[] {
  return rm.machine.macs.map((_, i) => `eth${i}`);
}

/** The layer-3 interfaces: the provisioning address on bond0/eth0, one VLAN device per VLAN. */
export function l3Interfaces(rm: ResolvedMachine, inv: Inventory): Iface[] {
  const m = rm.machine;
  const base = rm.role.network.bond?.name ?? 'eth0';
  const out: Iface[] = [{ dev: base, address: m.ip, net: networkFor(inv, m.ip, m.host), primary: true }];
  for (const v of rm.role.network.vlans) {
    const net = inv.networks.find((n) => n.name === v.network);
    if (!net) throw new RenderError(`${m.host}: VLAN ${v.id} names unknown network "${v.network}"`);
    const address = m.addresses[v.network];
    if (!address) throw new RenderError(`${m.host}: role ${rm.role.name} puts VLAN ${v.id} on network ${v.network}, but the machine has no addresses.${v.network}`);
    out.push({ dev: `${base}.${v.id}`, address, net, primary: false });
  }
  return out;
}

function bondOptions(b: Bond, slaves: string[]): string[] {
  const o = [`bond-slaves ${slaves.join(' ')}`, `bond-mode ${b.mode}`];
  if (b.miimon !== undefined) o.push(`bond-miimon ${b.miimon}`);
  if (b.arpInterval !== undefined) o.push(`bond-arp-interval ${b.arpInterval}`, `bond-arp-ip-target ${b.arpIpTargets.join(' ')}`);
  if (b.primary) o.push(`bond-primary ${b.primary}`);
  return o;
}

export function renderIfupdown(rm: ResolvedMachine, inv: Inventory): RenderedFile {
  const nics = nicNames(rm);
  const bond = rm.role.network.bond;
  if (bond && nics.length < 2) throw new RenderError(`${rm.machine.host}: bond ${bond.name} needs two NICs, machine has ${nics.length}`);
  const out = [`# rolecast: network for ${rm.machine.host} (${rm.role.name})`, 'auto lo', 'iface lo inet loopback', ''];
  if (bond) for (const n of nics) out.push(`iface ${n} inet manual`, `    bond-master ${bond.name}`, '');
  else for (const n of nics.slice(1)) out.push(`iface ${n} inet manual`, '');
  for (const i of l3Interfaces(rm, inv)) {
    out.push(`auto ${i.dev}`, `iface ${i.dev} inet static`, `    address ${i.address}/${i.net.prefix}`);
    // One default route, via the provisioning network; VLAN networks are reached directly.
    if (i.primary && i.net.gateway) out.push(`    gateway ${i.net.gateway}`);
    if (i.primary && i.net.dns.length) out.push(`    dns-nameservers ${i.net.dns.join(' ')}`);
    if (i.primary && bond) out.push(...bondOptions(bond, nics).map((o) => `    ${o}`));
    if (!i.primary) out.push(`    vlan-raw-device ${i.dev.split('.')[0]}`);
    out.push('');
  }
  return { path: '/etc/network/interfaces', mode: 0o644, content: out.join('\n'), secret: false };
}

function networkdFile(path: string, lines: string[]): RenderedFile {
  return { path: `/etc/systemd/network/${path}`, mode: 0o644, content: `${lines.join('\n')}\n`, secret: false };
}

export function renderNetworkd(rm: ResolvedMachine, inv: Inventory): RenderedFile[] {
  const m = rm.machine;
  const bond = rm.role.network.bond;
  const nics = nicNames(rm);
  const l3 = l3Interfaces(rm, inv);
  const files: RenderedFile[] = [];
  const vlanNames = l3.filter((i) => !i.primary).map((i) => i.dev);
  nics.forEach((n, i) => {
    if (!bond && i === 0) return; // eth0 carries the address itself: see its own .network below
    const lines = ['[Match]', `MACAddress=${m.macs[i]}`, '', '[Network]'];
    lines.push(bond ? `Bond=${bond.name}` : 'LinkLocalAddressing=no');
    if (bond?.primary === n) lines.push('PrimarySlave=yes');
    files.push(networkdFile(`10-${n}.network`, lines));
  });
  if (bond) {
    const b = ['[NetDev]', `Name=${bond.name}`, 'Kind=bond', '', '[Bond]', `Mode=${bond.mode}`];
    if (bond.miimon !== undefined) b.push(`MIIMonitorSec=${bond.miimon}ms`);
    if (bond.arpInterval !== undefined) b.push(`ARPIntervalSec=${bond.arpInterval}ms`, `ARPIPTargets=${bond.arpIpTargets.join(' ')}`);
    files.push(networkdFile(`20-${bond.name}.netdev`, b));
  }
  for (const i of l3) {
    if (!i.primary) files.push(networkdFile(`30-${i.dev}.netdev`, ['[NetDev]', `Name=${i.dev}`, 'Kind=vlan', '', '[VLAN]', `Id=${i.dev.split('.')[1]}`]));
    const match = i.primary && !bond ? `MACAddress=${m.macs[0]}` : `Name=${i.dev}`;
    const lines = ['[Match]', match, '', '[Network]', `Address=${i.address}/${i.net.prefix}`];
    if (i.primary && i.net.gateway) lines.push(`Gateway=${i.net.gateway}`);
    if (i.primary) for (const d of i.net.dns) lines.push(`DNS=${d}`);
    if (i.primary) for (const v of vlanNames) lines.push(`VLAN=${v}`);
    files.push(networkdFile(`40-${i.dev}.network`, lines));
  }
  return files;
}
