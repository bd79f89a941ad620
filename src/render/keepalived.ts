/**
 * keepalived.conf from the inventory: VRRP instances from the role, priority/state from the machine,
 * and IPVS virtual servers whose real servers are drawn from the machines that serve each site —
 * DSAS's MATRIX: moving a web box to a site changes the load balancers' config, nothing else.
 */
import { RenderError } from '../errors.js';
import type { Inventory, Machine, ResolvedMachine, VirtualSite, VrrpInstance } from '../inventory/types.js';
import { resolveMachine } from '../inventory/resolve.js';
import type { RenderedFile } from './types.js';
import { byHost } from './hostfiles.js';

// Real servers of every site, found in one pass per snapshot: per load balancer and site, a scan of
// every machine made each LB's render O(N).
const realServers = new WeakMap<Inventory, ReadonlyMap<string, readonly Machine[]>>();

/** Web machines whose resolved role is web-like (has no keepalived) and whose sites include `site`. */
export function realServersOf(inv: Inventory, site: string): readonly Machine[] {
  let bySite = realServers.get(inv);
  if (!bySite) {
    const found = new Map<string, Machine[]>();
    for (const m of inv.machines) {
      const rm = resolveMachine(inv, m);
      if (rm.role.keepalived || rm.role.kind !== 'service') continue;
      for (const s of new Set(rm.sites)) {
        const list = found.get(s);
        if (list) list.push(m); else found.set(s, [m]);
      }
    }
    for (const list of found.values()) list.sort(byHost);
    bySite = found;
    realServers.set(inv, bySite);
  }
  return bySite.get(site) ?? [];
}

function vrrpBlock(rm: ResolvedMachine, inv: Inventory, v: VrrpInstance): string[] {
  const m = rm.machine;
  // Per instance (a box MASTER of one, BACKUP of another), else machine-wide, else BACKUP at 100.
  const vrrp = m.vrrpInstances?.[v.name] ?? m.vrrp ?? { priority: 100, state: 'BACKUP' as const };
  const out = [`vrrp_instance ${v.name} {`, `    state ${vrrp.state}`, `    interface ${v.interface}`,
    `    virtual_router_id ${v.virtualRouterId}`, `    priority ${vrrp.priority}`, `    advert_int ${v.advertInt}`,
    `    garp_master_delay ${v.garpMasterDelay}`];
  if (v.authSecret !== undefined) {
    const pass = inv.secrets[v.authSecret];
    if (pass === undefined) throw new RenderError(`${m.host}: VRRP ${v.name} needs secret "${v.authSecret}", which is not defined`);
    // keepalived uses only the first 8 characters of a PASS auth_pass.
    out.push('    authentication {', '        auth_type PASS', `        auth_pass ${pass.slice(0, 8)}`, '    }');
  }
  out.push('    virtual_ipaddress {', ...v.vips.map((ip) => `        ${ip} dev ${v.interface}`), '    }');
  if (v.trackInterfaces.length) out.push('    track_interface {', ...v.trackInterfaces.map((t) => `        ${t}`), '    }');
  out.push('}', '');
  return out;
}

function checkBlock(site: VirtualSite, ip: string): string[] {
  const h = site.health;
  if (h.type === 'TCP_CHECK') return ['        TCP_CHECK {', `            connect_port ${site.realPort}`, `            connect_timeout ${h.timeout}`, '        }'];
  return ['        HTTP_GET {', '            url {', `                path ${h.path ?? '/'}`, `                status_code ${h.status ?? 200}`, '            }',
    `            connect_ip ${ip}`, `            connect_port ${site.realPort}`, `            connect_timeout ${h.timeout}`, '        }'];
}

/** A site's virtual_server block in three parts: its head lines, each real server's lines, its tail lines. */
function virtualServerParts(inv: Inventory, name: string): { head: string[]; servers: readonly Machine[]; server: (m: Machine) => string[]; tail: string[] } {
  const site = inv.sites[name];
  if (!site) throw new RenderError(`keepalived: unknown site "${name}"`);
  const head = [`virtual_server ${site.vip} ${site.port} {`, '    delay_loop 6', `    lb_algo ${site.lbAlgo}`, `    lb_kind ${site.lbKind}`, `    protocol ${site.protocol}`];
  if (site.sorryServer) head.push(`    sorry_server ${site.sorryServer}`);
  head.push('');
  const server = (m: Machine) => [`    real_server ${m.ip} ${site.realPort} {  # ${m.host}`, '        weight 1', ...checkBlock(site, m.ip), '    }'];
  return { head, servers: realServersOf(inv, name), server, tail: ['}', ''] };
}

// A site's virtual_server block lists every real server (O(N) text): the same for every load balancer
// of the snapshot, so it is built once per snapshot and site.
const siteBlocks = new WeakMap<Inventory, Map<string, string>>();

function blocksOf(inv: Inventory): Map<string, string> {
  let perInv = siteBlocks.get(inv);
  if (!perInv) { perInv = new Map(); siteBlocks.set(inv, perInv); }
  return perInv;
}

/** The virtual_server block of a site as text (its lines joined), once per snapshot. */
export function virtualServerText(inv: Inventory, name: string): string {
  const perInv = blocksOf(inv);
  let text = perInv.get(name);
  if (text === undefined) {
    const { head, servers, server, tail } = virtualServerParts(inv, name);
    text = [...head, ...servers.flatMap(server), ...tail].join('\n');
    perInv.set(name, text);
  }
  return text;
}

/**
 * virtualServerText made ahead, `every` real servers at a time with `turn()` awaited in between (a site
 * of 5,000 real servers is ~30 ms of text in one go): the same text, kept for the snapshot. Joining the
 * parts' joined lines with the same separator gives the text joining every line would.
 */
export async function warmVirtualServerText(inv: Inventory, name: string, turn: () => Promise<void>, every = 500): Promise<void> {
  if (blocksOf(inv).has(name) || !inv.sites[name]) return;
  const { head, servers, server, tail } = virtualServerParts(inv, name);
  const parts = [head.join('\n')];
  for (let i = 0; i < servers.length; i += every) {
    await turn();
    parts.push(servers.slice(i, i + every).flatMap(server).join('\n'));
  }
  parts.push(tail.join('\n'));
  const perInv = blocksOf(inv);
  if (!perInv.has(name)) perInv.set(name, parts.join('\n'));
}

export function renderKeepalived(rm: ResolvedMachine, inv: Inventory): RenderedFile | undefined {
  const k = rm.role.keepalived;
  if (!k) return undefined;
  const out = [`# rolecast: keepalived for ${rm.machine.host} (${rm.role.name}); real servers from the inventory`, 'global_defs {',
    `    router_id ${k.routerIdPrefix ?? ''}${rm.machine.host}`, '    vrrp_garp_master_refresh 60', '}', ''];
  for (const v of k.vrrp) out.push(...vrrpBlock(rm, inv, v));
  // Joining the parts' joined lines with the same separator gives the text joining every line would.
  const content = [out.join('\n'), ...k.virtualServers.map((s) => virtualServerText(inv, s))].join('\n');
  const secret = k.vrrp.some((v) => v.authSecret !== undefined);
  return { path: '/etc/keepalived/keepalived.conf', mode: secret ? 0o600 : 0o644, content, secret };
}
