/**
 * discovered, adopt, forget, facts: the discovery inbox as an operator sees it. They ask the running
 * server's API (base URL and token from the server config, or --base-url and ROLECAST_TOKEN), so the
 * CLI, the API and rules run the very same operation and the server stays the inbox's one writer.
 * commission edits machines.yaml (boot-once "discover"), as assign does.
 */
import { ERRORS, RolecastError, type ErrorCode } from '../errors.js';
import { baseUrlOf } from '../config.js';
import { setBootOnce } from '../inventory/edit.js';
import { FLAGS, type CommandSpec, type Flags } from './spec.js';
import type { DiscoveredRecord } from '../state/types.js';
import type { HardwareFacts } from '../discovery/report.js';
import { diffFacts } from '../discovery/diff.js';
import { applySite, findMachine, loadProfiles, out, serverConfig, table, UsageError, withState } from './common.js';

async function api(flags: Flags, method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> & unknown[] }> {
  const loaded = await serverConfig(flags);
  const cfg = applySite(loaded, await loadProfiles(loaded));
  const token = process.env.ROLECAST_TOKEN ?? cfg.http.tokens?.admin?.[0] ?? cfg.http.token;
  const url = `${baseUrlOf(cfg)}${path}`;
  let res: Response;
  try {
    res = await fetch(url, {
      method,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(15_000),
    });
  } catch (err) {
    throw new RolecastError('E_SERVER_UNREACHABLE', `cannot reach rolecast at ${url} (is "rolecast serve" running? --base-url): ${(err as Error).message}`, { cause: err });
  }
  const json = (await res.json().catch(() => ({}))) as Record<string, unknown> & unknown[];
  if (res.status >= 400) {
    const issues = Array.isArray(json.issues) ? `\n${(json.issues as string[]).join('\n')}` : '';
    const code = typeof json.code === 'string' && json.code in ERRORS ? json.code as ErrorCode : res.status === 404 ? 'E_NOT_FOUND' : 'E_INTERNAL';
    throw new RolecastError(code, `${String(json.message ?? `HTTP ${res.status}`)}${issues}`);
  }
  return { status: res.status, json };
}

const f = (r: DiscoveredRecord) => r.facts as unknown as HardwareFacts;

function stateText(r: DiscoveredRecord): string {
  if (r.state === 'known-machine-new-nic') return `${r.host}, new MAC`;
  if (r.state === 'adopted') return `adopted as ${r.host}`;
  return 'waiting';
}

function summary(r: DiscoveredRecord & { suggestion?: { host: string; role: string; rule: string } }): string[] {
  const x = f(r);
  const disks = (x.disks ?? []).map((d) => `${d.name}:${d.bytes !== undefined ? Math.round(d.bytes / 2 ** 30) : '?'}G`).join(' ');
  const lldp = (x.nics ?? []).filter((n) => n.lldp).map((n) => `${n.name}→${n.lldp!.system ?? n.lldp!.chassis ?? '?'}/${n.lldp!.port ?? '?'}`).join(' ');
  const state = stateText(r) + (r.suggestion ? ` (rule ${r.suggestion.rule}: ${r.suggestion.host} ${r.suggestion.role})` : '');
  return [r.mac, r.lastSeen.slice(0, 19), x.system?.serial ?? '-', x.system?.uuid ?? '-', `${x.cpu?.threads ?? '?'}x ${x.cpu?.model ?? '?'}`,
    x.memoryMiB !== undefined ? `${x.memoryMiB}M` : '?', disks || '-', `${(x.nics ?? []).length}`, lldp || '-', state];
}

export async function cmdDiscovered(_args: string[], flags: Flags): Promise<number> {
  const { json } = await api(flags, 'GET', '/api/discovered');
  const list = json as unknown as DiscoveredRecord[];
  if (flags.json) { out(JSON.stringify(list, null, 2)); return 0; }
  if (list.length === 0) { out('the discovery inbox is empty'); return 0; }
  out(table([['MAC', 'LAST SEEN', 'SERIAL', 'UUID', 'CPU', 'MEMORY', 'DISKS', 'NICS', 'LLDP', 'STATE'], ...list.map(summary)]));
  return 0;
}

function str(flags: Flags, k: string): string | undefined {
  return typeof flags[k] === 'string' ? flags[k] : undefined;
}

export async function cmdAdopt(args: string[], flags: Flags): Promise<number> {
  const [key] = args;
  if (!key) throw new UsageError('adopt needs a MAC, serial or UUID from "rolecast discovered"');
  const body = Object.fromEntries(['host', 'role', 'ip'].flatMap((k) => (str(flags, k) ? [[k, str(flags, k)]] : [])));
  const { json } = await api(flags, 'POST', `/api/discovered/${encodeURIComponent(key)}/adopt`, body);
  if (flags.json) out(JSON.stringify(json, null, 2));
  else out(`adopted ${String(json.entry)} as ${String(json.host)} (role ${String(json.role)}, ip ${String(json.ip)}); machines.yaml:\n${String(json.line)}`);
  return 0;
}

export async function cmdForget(args: string[], flags: Flags): Promise<number> {
  const [key] = args;
  if (!key) throw new UsageError('forget needs a MAC (or serial, UUID)');
  const { json } = await api(flags, 'DELETE', `/api/discovered/${encodeURIComponent(key)}`);
  out(`forgot ${String(json.forgotten)}`);
  return 0;
}

/** Boot the commissioning image once: the box reports fresh facts, then boots its role again. */
export async function cmdCommission(args: string[], flags: Flags): Promise<number> {
  const [host] = args;
  if (!host) throw new UsageError('commission needs a host name');
  const loaded = await serverConfig(flags);
  const m = findMachine(await loadProfiles(loaded), host);
  await withState(loaded, ['profiles'], (s) => setBootOnce(s.profiles, m.host, 'discover', { who: 'rolecast commission' }));
  out(`${m.host}: boot_once discover set; its next boot refreshes its facts (rolecast facts ${m.host}), then it boots ${m.role} again`);
  return 0;
}

export async function cmdFacts(args: string[], flags: Flags): Promise<number> {
  const [host] = args;
  if (!host) throw new UsageError('facts needs a host name, MAC, serial or UUID');
  const { json } = await api(flags, 'GET', `/api/discovered/${encodeURIComponent(host)}`);
  const r = json as unknown as DiscoveredRecord;
  const changes = r.previous ? diffFacts(r.previous.facts as unknown as HardwareFacts, f(r)) : [];
  if (flags.json) { out(JSON.stringify({ host: r.host ?? null, mac: r.mac, at: r.lastSeen, facts: r.facts, previousAt: r.previous?.at ?? null, changes }, null, 2)); return 0; }
  const x = f(r);
  const lines = [
    `${r.host ?? r.mac}: facts of ${r.lastSeen} (${stateText(r)})`,
    `  system  ${x.system?.vendor ?? '?'} ${x.system?.product ?? '?'} serial ${x.system?.serial ?? '?'} uuid ${x.system?.uuid ?? '?'}`,
    `  cpu     ${x.cpu?.model ?? '?'} sockets ${x.cpu?.sockets ?? '?'} cores ${x.cpu?.cores ?? '?'} threads ${x.cpu?.threads ?? '?'}`,
    `  memory  ${x.memoryMiB ?? '?'} MiB`,
    ...(x.disks ?? []).map((d) => `  disk    ${d.name} ${d.bytes ?? '?'} bytes ${d.model ?? ''} serial ${d.serial ?? '?'} ${d.rotational ? 'rotational' : 'solid-state'}`),
    ...(x.nics ?? []).map((n) => `  nic     ${n.name} ${n.mac} ${n.driver ?? '?'} ${n.speedMbps ?? '?'} Mb/s link ${n.link ? 'up' : 'down'}${n.lldp ? ` lldp ${n.lldp.system ?? '?'} port ${n.lldp.port ?? '?'}${n.lldp.vlan ? ` vlan ${n.lldp.vlan}` : ''}` : ''}`),
    ...(x.bmc?.address ? [`  bmc     ${x.bmc.address}`] : []),
    r.previous ? (changes.length ? `changed since ${r.previous.at}:\n${changes.map((c) => `  ${c}`).join('\n')}` : `no change since ${r.previous.at}`) : 'first report (nothing to compare)',
  ];
  out(lines.join('\n'));
  return 0;
}

const SERVER = { config: FLAGS.config, profiles: FLAGS.profiles, 'base-url': FLAGS['base-url'] };
const VIA_API = 'Asks the running server\'s API (base URL from the server config or --base-url; token: $ROLECAST_TOKEN, else the config\'s first admin token).';

export const discoveredCommand: CommandSpec = {
  name: 'discovered', summary: 'the discovery inbox: unknown boxes that reported their hardware', maxArgs: 0, run: cmdDiscovered,
  flags: { ...SERVER, json: FLAGS.json },
  description: `One entry per box (de-duplicated by SMBIOS UUID and serial): MAC, last seen, serial, UUID, CPU, memory, disks, NIC count, LLDP switch port, and its state: waiting, adopted as <host>, or "<host>, new MAC" for a known machine on a new NIC. ${VIA_API}`,
  examples: ['rolecast discovered', 'rolecast discovered --json'],
};

export const adoptCommand: CommandSpec = {
  name: 'adopt', summary: 'make a discovered box a machine (one line in machines.yaml)', args: '<mac|serial|uuid>', minArgs: 1, maxArgs: 1, run: cmdAdopt,
  flags: { ...SERVER, json: FLAGS.json, host: { value: 'NAME', help: 'host name (default: the matching discovery rule\'s template)' }, role: { value: 'ROLE', help: 'role (default: the matching rule\'s)' }, ip: { value: 'ADDR', help: 'provisioning address (default: the rule\'s range, else discovery.addresses)' } },
  description: `Appends one line to machines.yaml with every NIC MAC of the box, its UUID (and BMC address when found), validated first; refuses a duplicate host, an address in use or an unknown role. The box, polling, reboots into its role. ${VIA_API}`,
  examples: ['rolecast adopt 52:54:00:aa:00:01 --host w200 --role web --ip 10.0.0.150', 'rolecast adopt RC-0001 --host w201 --role web'],
};

export const forgetCommand: CommandSpec = {
  name: 'forget', summary: 'drop a discovery inbox entry', args: '<mac|serial|uuid>', minArgs: 1, maxArgs: 1, run: cmdForget, flags: SERVER,
  description: VIA_API,
  examples: ['rolecast forget 52:54:00:aa:00:01', 'rolecast forget RC-0001'],
};

export const commissionCommand: CommandSpec = {
  name: 'commission', summary: 'boot the commissioning image once: fresh hardware facts', args: '<host>', minArgs: 1, maxArgs: 1, run: cmdCommission,
  flags: { config: FLAGS.config, profiles: FLAGS.profiles },
  description: 'Sets boot_once: discover on the machine; its next boot reports its hardware (rolecast facts <host>) and boots its role again.',
  examples: ['rolecast commission w106'],
};

export const factsCommand: CommandSpec = {
  name: 'facts', summary: 'a box\'s hardware facts and what changed since last time', args: '<host|mac|serial>', minArgs: 1, maxArgs: 1, run: cmdFacts,
  flags: { ...SERVER, json: FLAGS.json },
  description: `Changes: a disk gone or new, a NIC at another speed or link, another switch port, memory, CPU. ${VIA_API}`,
  examples: ['rolecast facts w106', 'rolecast facts 52:54:00:00:02:06 --json'],
};
