/**
 * How a command is described and how its command line is read. Each command (src/commands/*.ts) exports a
 * CommandSpec: its positional arguments, the flags it accepts (from FLAGS or its own), help text and examples.
 * The parser knows every flag any command accepts, so a flag that exists but does not apply to this command is
 * told apart from a typo ("did you mean --profiles?"). Usage errors exit 2 (as grep, diff and getopt tools do).
 */
import { RolecastError } from '../errors.js';

export type Flags = Record<string, string | boolean | undefined>;

export interface FlagSpec {
  /** Takes a value (`--profiles DIR`); else a switch. */
  value?: string;
  help: string;
  short?: string;
}

export interface CommandSpec {
  name: string;
  /** One line for the command list. */
  summary: string;
  /** Positional part of the synopsis, e.g. "<host|mac>". */
  args?: string;
  /** Bounds on the positional arguments (after subcommand selection). */
  minArgs?: number;
  maxArgs?: number;
  flags: Record<string, FlagSpec>;
  /** Longer description, printed by `rolecast help <command>`. */
  description?: string;
  examples?: string[];
  /** `images list|build|rollback`: the first positional picks one; `default` when none is given. */
  subcommands?: CommandSpec[];
  defaultSubcommand?: string;
  run?: (args: string[], flags: Flags) => Promise<number>;
}

export class UsageError extends RolecastError {
  constructor(message: string) { super('E_USAGE', message); }
}

/** Flags shared by several commands: one wording everywhere. */
export const FLAGS = {
  config: { value: 'FILE', help: 'server config YAML (default: $ROLECAST_CONFIG, else /etc/rolecast/rolecast.yaml if it exists)' },
  profiles: { value: 'DIR', help: 'profiles directory (default: the config\'s profilesDir, else /etc/rolecast/profiles)' },
  data: { value: 'DIR', help: 'state directory: leases, events, served records (default: the config\'s dataDir, else /var/lib/rolecast)' },
  images: { value: 'DIR', help: 'images directory (default: the config\'s imagesDir, else /var/lib/rolecast/images)' },
  json: { help: 'print JSON instead of a table' },
  'base-url': { value: 'URL', help: 'URL machines use to reach rolecast over HTTP (default http://<address>:<port>)' },
} satisfies Record<string, FlagSpec>;

/** Flags every command takes. */
export const GLOBAL_FLAGS: Record<string, FlagSpec> = {
  help: { help: 'print this command\'s help and exit 0', short: 'h' },
};

/** Levenshtein distance, for "did you mean". */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length]!;
}

/** The closest candidate, if it is close enough to be a plausible typo. */
export function suggest(word: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = c.startsWith(word) && word.length >= 2 ? 0.5 : distance(word, c);
    if (d < bestD) { best = c; bestD = d; }
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

export interface ParsedLine { positionals: string[]; flags: Flags }

/**
 * Read argv against the flags `accepted`; `known` is every flag of every command (for the "does not apply"
 * message). `--flag value`, `--flag=value`, `-h`, and `--` (the rest is positional) are understood.
 */
export function parseLine(argv: readonly string[], accepted: Record<string, FlagSpec>, known: ReadonlySet<string>, where: string): ParsedLine {
  const positionals: string[] = [];
  const flags: Flags = {};
  const shorts = new Map(Object.entries(accepted).filter(([, f]) => f.short).map(([n, f]) => [f.short!, n]));
  for (let i = 0; i < argv.length; i++) {
    const tok = argv[i]!;
    if (tok === '--') { positionals.push(...argv.slice(i + 1)); break; }
    if (!tok.startsWith('-') || tok === '-') { positionals.push(tok); continue; }
    const eq = tok.indexOf('=');
    const raw = tok.startsWith('--') ? tok.slice(2, eq < 0 ? undefined : eq) : tok.slice(1);
    const name = tok.startsWith('--') ? raw : shorts.get(raw);
    const spec = name === undefined ? undefined : accepted[name];
    if (!spec || name === undefined) throw unknownFlag(tok.startsWith('--') ? raw : tok, accepted, known, where);
    if (!spec.value) {
      if (eq >= 0) throw new UsageError(`--${name} is a switch and takes no value`);
      flags[name] = true;
      continue;
    }
    const value = eq >= 0 ? tok.slice(eq + 1) : argv[++i];
    if (value === undefined) throw new UsageError(`--${name} needs a value (--${name} ${spec.value})`);
    flags[name] = value;
  }
  return { positionals, flags };
}

function unknownFlag(raw: string, accepted: Record<string, FlagSpec>, known: ReadonlySet<string>, where: string): UsageError {
  const mine = Object.keys(accepted);
  const list = `${where} takes: ${mine.map((f) => `--${f}`).join(' ')}`;
  if (!raw.startsWith('-') && known.has(raw)) return new UsageError(`--${raw} does not apply to ${where} (${list})`);
  const close = suggest(raw.replace(/^-+/, ''), mine);
  return new UsageError(`unknown option ${raw.startsWith('-') ? raw : `--${raw}`}${close ? ` (did you mean --${close}?)` : ''}; ${list}`);
}

/** The string value of a flag, if given. */
export function str(flags: Flags, name: string): string | undefined {
  const v = flags[name];
  return typeof v === 'string' ? v : undefined;
}
