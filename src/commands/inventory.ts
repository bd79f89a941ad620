/** validate, machines, render, assign, diff: the inventory as an operator sees it. */
import { createHash } from 'node:crypto';
import { resolveMachine } from '../inventory/index.js';
import { assignRole } from '../inventory/edit.js';
import { ProfileError, formatIssue } from '../errors.js';
import type { Inventory, Machine } from '../inventory/types.js';
import { renderMachineFiles, machineContentHash, renderBootConfig } from '../render/index.js';
import type { RenderContext } from '../render/types.js';
import { planBoot } from '../boot/plan.js';
import type { Firmware } from '../boot/facts.js';
import { fleet, type FleetRow } from '../boot/fleet.js';
import { loadImageView } from '../images/view.js';
import { existingServerKey } from '../serverkey.js';
import { FLAGS, type CommandSpec, type Flags } from './spec.js';
import { rebootAfterEdit, REBOOT_FLAGS } from './power.js';
import { applySite, findMachine, loadProfiles, NotFoundError, out, renderContext, serverConfig, table, UsageError, withState, type Loaded } from './common.js';
import { operator } from './profiles.js';

async function load(flags: Flags): Promise<{ inv: Inventory; ctx: RenderContext; dataDir: string; loaded: Loaded }> {
  const loaded = await serverConfig(flags);
  const inv = await loadProfiles(loaded);
  const cfg = applySite(loaded, inv);
  // As the server renders and plans: with its key (capture credentials) and the image store's view.
  const serverKey = await existingServerKey(cfg.dataDir);
  const ctx = { ...renderContext(cfg), ...(serverKey ? { serverKey } : {}), images: await loadImageView(inv, cfg.imagesDir) };
  return { inv, ctx, dataDir: cfg.dataDir, loaded };
}

export async function cmdValidate(_args: string[], flags: Flags): Promise<number> {
  const loaded = await serverConfig(flags);
  const { cfg } = loaded;
  try {
    const inv = await loadProfiles(loaded);
    out(`${cfg.profilesDir}: ok (${inv.machines.length} machines, ${Object.keys(inv.roles).length} roles, version ${inv.version.slice(0, 12)})`);
    return 0;
  } catch (err) {
    if (!(err instanceof ProfileError)) throw err;
    process.stderr.write(`${err.issues.map(formatIssue).join('\n')}\n${err.issues.length} error${err.issues.length === 1 ? '' : 's'}\n`);
    return 1;
  }
}

function machineRow(m: Machine): Record<string, unknown> {
  return { host: m.host, macs: m.macs, role: m.role, bootOnce: m.bootOnce ?? null, ip: m.ip, addresses: m.addresses, source: `${m.source.file}:${m.source.line}` };
}

export async function cmdMachines(_args: string[], flags: Flags): Promise<number> {
  const { inv } = await load(flags);
  if (flags.json) {
    out(JSON.stringify(inv.machines.map(machineRow), null, 2));
    return 0;
  }
  const rows = [['HOST', 'MAC', 'ROLE', 'ADDRESS']];
  for (const m of inv.machines) {
    const extra = Object.entries(m.addresses).map(([n, a]) => ` ${n}=${a}`).join('');
    rows.push([m.host, m.macs.join(','), m.bootOnce ? `${m.role} (once: ${m.bootOnce})` : m.role, `${m.ip}${extra}`]);
  }
  out(table(rows));
  return 0;
}

const FIRMWARE_ARCH: Partial<Record<Firmware, number>> = { bios: 0, 'uefi-x64': 7, 'uefi-arm64': 11, 'uefi-http-x64': 16 };

function sha256(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}

export async function cmdRender(args: string[], flags: Flags): Promise<number> {
  const [key] = args;
  if (!key) throw new UsageError('render needs a host name or MAC');
  const { inv, ctx } = await load(flags);
  const m = findMachine(inv, key);
  if (typeof flags.boot === 'string') return renderBoot(inv, ctx, m, flags.boot, flags.firmware);
  const files = renderMachineFiles(resolveMachine(inv, m), inv, ctx);
  if (typeof flags.file === 'string') {
    const f = files.find((x) => x.path === flags.file);
    if (!f) throw new NotFoundError(`${m.host} gets no file ${flags.file} (files: ${files.map((x) => x.path).join(', ')})`);
    process.stdout.write(f.content);
    return 0;
  }
  if (flags.json) {
    out(JSON.stringify({ host: m.host, role: m.bootOnce ?? m.role, hash: machineContentHash(files), files: files.map((f) => ({ ...f, sha256: sha256(f.content) })) }, null, 2));
    return 0;
  }
  const rows = [['MODE', 'SIZE', 'SECRET', 'SHA256', 'PATH']];
  for (const f of files) rows.push([f.mode.toString(8).padStart(4, '0'), String(Buffer.byteLength(f.content)), f.secret ? 'secret' : '-', sha256(f.content).slice(0, 16), f.path]);
  out(`${table(rows)}\n${m.host}: ${files.length} files, content hash ${machineContentHash(files)}`);
  return 0;
}

function renderBoot(inv: Inventory, ctx: RenderContext, m: Machine, kind: string, fwFlag: unknown): number {
  if (kind !== 'ipxe' && kind !== 'pxelinux' && kind !== 'grub') throw new UsageError(`--boot must be ipxe, pxelinux or grub (got "${kind}")`);
  const fw = (typeof fwFlag === 'string' ? fwFlag : 'bios') as Firmware;
  const arch = FIRMWARE_ARCH[fw];
  if (arch === undefined) throw new UsageError(`--firmware must be one of ${Object.keys(FIRMWARE_ARCH).join(', ')}`);
  const mac = m.macs[0]!;
  const plan = planBoot({ mac, protocol: 'http', arch, ipxe: kind === 'ipxe', pxe: true }, inv, ctx);
  if (plan.action === 'ignore') throw new NotFoundError(`${m.host} does not boot: ${plan.reason}`);
  process.stdout.write(renderBootConfig(kind, plan, inv, ctx));
  return 0;
}

export async function cmdAssign(args: string[], flags: Flags): Promise<number> {
  const [key, role] = args;
  if (!key || !role) throw new UsageError('assign needs <host|mac> <role>');
  const loaded = await serverConfig(flags);
  // A MAC names its machine; the YAML edit is by host.
  const m = findMachine(await loadProfiles(loaded), key);
  const host = m.host;
  const who = { who: `rolecast assign (${operator()})` };
  await withState(loaded, ['profiles'], (s) => assignRole(s.profiles, host, role, who));
  if (flags.reboot) return rebootAfterEdit(loaded, flags, host, `role ${m.role} → ${role}`);
  out(`${host}: role ${role} (takes effect on its next boot)`);
  return 0;
}

export interface DiffRow {
  host: string;
  mac: string;
  role: string;
  status: FleetRow['status'];
  servedRole?: string;
  hash: string | null;
  servedHash?: string;
}

export async function machineDiff(inv: Inventory, ctx: RenderContext, loaded: Loaded): Promise<DiffRow[]> {
  // Site-wide with the postgres backend: what any server served.
  const served = await withState(loaded, ['served'], async (s) => ({ ...s.served.all() }));
  return fleet(inv, ctx, served).map((r) => ({
    host: r.host, mac: r.mac, role: r.role, status: r.status, hash: r.hash,
    ...(r.served ? { servedRole: r.served.role, servedHash: r.served.hash } : {}),
  }));
}

export async function cmdDiff(_args: string[], flags: Flags): Promise<number> {
  const { inv, ctx, loaded } = await load(flags);
  const rows = await machineDiff(inv, ctx, loaded);
  const changed = rows.filter((r) => r.status !== 'unchanged');
  if (flags.json) out(JSON.stringify(rows, null, 2));
  else if (changed.length === 0) out('no machine would change on its next boot');
  else out(table([['HOST', 'STATUS', 'ROLE', 'WAS'], ...changed.map((r) => [r.host, r.status, r.role, r.servedRole ?? '-'])]));
  return flags['exit-code'] && changed.length ? 1 : 0;
}

const P = { profiles: FLAGS.profiles, config: FLAGS.config };

export const validateCommand: CommandSpec = {
  name: 'validate', summary: 'check the profiles; every error as file:line:col: path: message', maxArgs: 0, flags: P, run: cmdValidate,
  description: 'Load the profiles (site, roles, machines, secrets) and report every problem at once, each as file:line:col: path: message. Exits 1 when any is found.',
  examples: ['rolecast validate --profiles /etc/rolecast/profiles', 'rolecast validate --profiles ./profiles   # the bundled example'],
};

export const machinesCommand: CommandSpec = {
  name: 'machines', summary: 'table of machines: host, MACs, role, address', maxArgs: 0, flags: { ...P, json: FLAGS.json }, run: cmdMachines,
  examples: ['rolecast machines', 'rolecast machines --json | jq -r \'.[] | select(.role == "web") | .host\''],
};

export const renderCommand: CommandSpec = {
  name: 'render', summary: 'the files a machine gets, one of them, or its boot config', args: '<host|mac>', minArgs: 1, maxArgs: 1, run: cmdRender,
  flags: {
    ...P, json: FLAGS.json, 'base-url': FLAGS['base-url'],
    file: { value: 'PATH', help: 'print this one generated file (e.g. /etc/keepalived/keepalived.conf)' },
    boot: { value: 'ipxe|pxelinux|grub', help: 'print the boot config the machine would get' },
    firmware: { value: 'bios|uefi-x64|uefi-arm64|uefi-http-x64', help: 'firmware for --boot (default bios)' },
  },
  examples: ['rolecast render lb1', 'rolecast render 52:54:00:00:01:01 --file /etc/keepalived/keepalived.conf', 'rolecast render w101 --boot ipxe --firmware uefi-x64'],
};

export const assignCommand: CommandSpec = {
  name: 'assign', summary: 'change a machine\'s role in machines.yaml (comments and layout kept)', args: '<host|mac> <role>', minArgs: 2, maxArgs: 2, flags: { ...P, ...REBOOT_FLAGS }, run: cmdAssign,
  description: 'Edit the machine\'s role line in machines.yaml in place. The edit is validated first: a role that does not exist, or an edit that would make the profiles invalid, changes nothing. A running server picks the change up for the machine\'s next boot.',
  examples: ['rolecast assign w106 lb', 'rolecast assign 52:54:00:00:02:06 web --profiles /etc/rolecast/profiles', 'rolecast assign w106 lb --reboot   # then PXE once + power cycle through its BMC'],
};

export const diffCommand: CommandSpec = {
  name: 'diff', summary: 'machines whose next boot would differ from what they were last served', maxArgs: 0, run: cmdDiff,
  flags: { ...P, data: FLAGS.data, json: FLAGS.json, 'base-url': FLAGS['base-url'], 'exit-code': { help: 'exit 1 when any machine would change' } },
  examples: ['rolecast diff', 'rolecast diff --exit-code && echo nothing to reboot'],
};
