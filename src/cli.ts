/**
 * The rolecast command. Each subcommand lives in src/commands/ (listed in src/commands/index.ts); this file
 * picks the command, reads its command line against its spec, and maps errors to exit codes:
 * 0 ok, 1 failed (invalid profiles, unknown machine, server error), 2 usage error, 3 a BMC failed or did
 * not answer (rolecast power, assign/boot-once --reboot).
 */
import { readFileSync, realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { ERRORS, RolecastError } from './errors.js';
import { COMMANDS } from './commands/index.js';
import { GLOBAL_FLAGS, parseLine, suggest, UsageError, type CommandSpec, type Flags } from './commands/spec.js';
import { commandHelp, globalUsage, manPage } from './commands/help.js';

export type { Flags };

export const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

const ALL_FLAGS = new Set(COMMANDS.flatMap((c) => [c, ...(c.subcommands ?? [])]).flatMap((c) => Object.keys(c.flags)));

function findCommand(name: string, list: readonly CommandSpec[], where: string): CommandSpec {
  const c = list.find((x) => x.name === name);
  if (c) return c;
  const close = suggest(name, list.map((x) => x.name));
  throw new UsageError(`${where ? `${where}: ` : ''}unknown command "${name}"${close ? ` (did you mean "${close}"?)` : ''}; rolecast --help lists them`);
}

function help(args: string[]): number {
  if (args[0] === '--man') { process.stdout.write(manPage(COMMANDS, VERSION)); return 0; }
  if (args.length === 0) { process.stdout.write(globalUsage(COMMANDS, VERSION)); return 0; }
  const spec = findCommand(args[0]!, COMMANDS, 'help');
  const sub = args[1] && spec.subcommands ? findCommand(args[1], spec.subcommands, `help ${spec.name}`) : undefined;
  process.stdout.write(sub ? commandHelp(sub, spec) : commandHelp(spec));
  return 0;
}

/** The command (or subcommand) spec and its own argv. */
function select(argv: string[]): { spec: CommandSpec; parent?: CommandSpec; rest: string[] } {
  const spec = findCommand(argv[0]!, COMMANDS, '');
  const rest = argv.slice(1);
  if (!spec.subcommands) return { spec, rest };
  // The subcommand, if given, comes right after the command (`images --json` is `images list --json`).
  const first = rest[0] !== undefined && !rest[0].startsWith('-') ? rest[0] : undefined;
  if (first === undefined && (rest.includes('--help') || rest.includes('-h'))) return { spec, rest };
  const name = first ?? spec.defaultSubcommand;
  if (name === undefined) throw new UsageError(`${spec.name} needs a subcommand (${spec.subcommands.map((s) => s.name).join(', ')})`);
  const sub = findCommand(name, spec.subcommands, spec.name);
  return { spec: sub, parent: spec, rest: first === undefined ? rest : rest.slice(1) };
}

function checkArity(spec: CommandSpec, where: string, n: number): void {
  const min = spec.minArgs ?? 0;
  const max = spec.maxArgs ?? Infinity;
  if (n < min) throw new UsageError(`${where} needs ${spec.args ?? `${min} argument(s)`}`);
  if (n > max) throw new UsageError(`${where} takes ${max === 0 ? 'no arguments' : `at most ${max}: ${spec.args ?? ''}`}`);
}

async function run(argv: string[]): Promise<number> {
  const [first] = argv;
  if (first === undefined) { process.stderr.write(globalUsage(COMMANDS, VERSION)); return 2; }
  if (first === '--help' || first === '-h') return help([]);
  if (first === '--version' || first === '-V') { process.stdout.write(`rolecast ${VERSION}\n`); return 0; }
  if (first === 'help') return help(argv.slice(1));
  if (first.startsWith('-')) throw new UsageError(`expected a command before ${first}; rolecast --help lists them`);
  const { spec, parent, rest } = select(argv);
  const where = parent ? `${parent.name} ${spec.name}` : spec.name;
  const line = parseLine(rest, { ...spec.flags, ...GLOBAL_FLAGS }, ALL_FLAGS, where);
  if (line.flags.help) { process.stdout.write(commandHelp(spec, parent)); return 0; }
  checkArity(spec, where, line.positionals.length);
  if (!spec.run) throw new UsageError(`${where} needs a subcommand`);
  return spec.run(line.positionals, line.flags);
}

export async function main(argv: string[]): Promise<number> {
  try {
    return await run(argv);
  } catch (err) {
    const name = COMMANDS.some((c) => c.name === argv[0]) ? ` ${argv[0]}` : '';
    // The catalogue says the exit code: 2 a usage error, 1 anything else that failed.
    if (err instanceof RolecastError) {
      process.stderr.write(`rolecast${name}: ${err.message}\n`);
      return ERRORS[err.code].exit;
    }
    throw err;
  }
}

function isEntry(): boolean {
  try { return import.meta.url === pathToFileURL(realpathSync(process.argv[1] ?? '')).href; } catch { return false; }
}

if (isEntry()) {
  main(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
    process.exitCode = 1;
  });
}
