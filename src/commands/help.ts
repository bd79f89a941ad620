/**
 * Help text from the command specs: the command list (`rolecast --help`), one command's help with every flag
 * and examples (`rolecast help <command>`, `rolecast <command> --help`), and the man page (roff, `rolecast
 * help --man`, installed as rolecast(1) by the Debian package). One source, so help and man page never disagree.
 */
import { GLOBAL_FLAGS, type CommandSpec, type FlagSpec } from './spec.js';

export const EXIT_CODES = 'exit status: 0 ok; 1 failed (invalid profiles, unknown machine, server error); 2 usage error; 3 a BMC failed or did not answer (power, console, --reboot)';

export const ENVIRONMENT = [
  ['ROLECAST_CONFIG', 'server config file used when --config is not given'],
  ['ROLECAST_SENDFILE_THREADS', 'threads of the native sendfile engine (default: one per core, at most 4)'],
] as const;

function synopsis(spec: CommandSpec, prefix = 'rolecast'): string {
  return `${prefix} ${spec.name}${spec.args ? ` ${spec.args}` : ''}${Object.keys(spec.flags).length ? ' [options]' : ''}`;
}

function flagLine(name: string, f: FlagSpec): [string, string] {
  return [`${f.short ? `-${f.short}, ` : ''}--${name}${f.value ? ` ${f.value}` : ''}`, f.help];
}

function columns(rows: Array<[string, string]>, indent = '  '): string {
  const w = Math.max(...rows.map(([a]) => a.length));
  return rows.map(([a, b]) => `${indent}${a.padEnd(w)}  ${b}`).join('\n');
}

export function globalUsage(commands: readonly CommandSpec[], version: string): string {
  return `rolecast ${version}: network-boot and bare-metal provisioning server

usage: rolecast <command> [arguments] [options]

commands:
${columns(commands.map((c) => [c.name, c.summary]))}

  rolecast help <command>     every option of a command, with examples
  rolecast --version          print the version

${EXIT_CODES}
environment:
${columns(ENVIRONMENT.map(([k, v]) => [k, v]))}
`;
}

export function commandHelp(spec: CommandSpec, parent?: CommandSpec): string {
  const prefix = parent ? `rolecast ${parent.name}` : 'rolecast';
  const parts = [`usage: ${synopsis(spec, prefix)}`, '', spec.description ?? spec.summary];
  if (spec.subcommands) {
    parts.push('', 'subcommands:', columns(spec.subcommands.map((s) => [synopsis(s, ''), s.summary])));
    if (spec.defaultSubcommand) parts.push(`  (no subcommand: ${spec.defaultSubcommand})`);
  }
  const flags = Object.entries({ ...spec.flags, ...GLOBAL_FLAGS });
  parts.push('', 'options:', columns(flags.map(([n, f]) => flagLine(n, f))));
  if (spec.examples?.length) parts.push('', 'examples:', ...spec.examples.map((e) => `  ${e}`));
  if (spec.subcommands) parts.push('', `rolecast help ${spec.name} <subcommand> for a subcommand's options`);
  parts.push('', EXIT_CODES);
  return `${parts.join('\n')}\n`;
}

function roff(s: string): string {
  return s.replace(/\\/g, '\\e').replace(/^([.'])/gm, '\\&$1').replace(/-/g, '\\-');
}

function manCommand(spec: CommandSpec, prefix: string, out: string[]): void {
  out.push('.SS', `.B ${roff(synopsis(spec, prefix).replace(/^rolecast /, 'rolecast '))}`, roff(spec.description ?? spec.summary));
  for (const [n, f] of Object.entries(spec.flags)) {
    const [a, b] = flagLine(n, f);
    out.push('.TP', `.B ${roff(a)}`, roff(b));
  }
  if (spec.examples?.length) out.push('.PP', 'Examples:', '.nf', ...spec.examples.map((e) => roff(`  ${e}`)), '.fi');
  for (const s of spec.subcommands ?? []) manCommand(s, `rolecast ${spec.name}`, out);
}

/** rolecast(1) in man(7) format. */
export function manPage(commands: readonly CommandSpec[], version: string): string {
  const out = [
    `.TH ROLECAST 1 "" "rolecast ${version}" "User Commands"`,
    '.SH NAME', 'rolecast \\- network\\-boot and bare\\-metal provisioning server (DHCP, TFTP, HTTP for PXE)',
    '.SH SYNOPSIS', '.B rolecast', '.I command', '[arguments] [options]',
    '.SH DESCRIPTION',
    roff('rolecast answers DHCP and TFTP for PXE and serves boot configs, images and per-machine rootfs over HTTP keyed by MAC, from profiles in YAML (site, roles, machines). Every command takes -h/--help.'),
    '.SH COMMANDS',
  ];
  for (const c of commands) manCommand(c, 'rolecast', out);
  out.push('.SH FILES',
    '.TP', '.B /etc/rolecast/rolecast.yaml', 'server config (keys: address, profilesDir, dataDir, imagesDir, logLevel, dhcp, tftp, http)',
    '.TP', '.B /etc/rolecast/profiles', 'default profiles directory (rolecast.yaml, roles/, machines.yaml, secrets.yaml)',
    '.TP', '.B /var/lib/rolecast', 'default state directory; images in /var/lib/rolecast/images',
    '.SH ENVIRONMENT');
  for (const [k, v] of ENVIRONMENT) out.push('.TP', `.B ${k}`, roff(v));
  out.push('.SH EXIT STATUS', roff(EXIT_CODES.replace(/^exit status: /, '')), '');
  return out.join('\n');
}
