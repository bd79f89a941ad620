/**
 * The rolecast command. Each subcommand lives in src/commands/; this file only parses the command line.
 * Exit codes: 0 ok, 1 the input is invalid (profiles, arguments), 2 we failed.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { pathToFileURL } from 'node:url';
import { RolecastError } from './errors.js';
import { cmdAssign, cmdDiff, cmdMachines, cmdRender, cmdValidate } from './commands/inventory.js';
import { cmdImages } from './commands/images.js';
import { cmdServe } from './commands/serve.js';
import { cmdEvents } from './commands/events.js';

export const USAGE = `usage: rolecast <command> [options]

  validate [--profiles DIR]                       check the profiles; every error as file:line:col: path: message
  machines [--profiles DIR] [--json]              table of machines: host, MACs, role, address
  render <host|mac> [--profiles DIR] [--json]     list every file the machine gets
         [--file PATH]                            print one of them
         [--boot ipxe|pxelinux|grub] [--firmware bios|uefi-x64|uefi-arm64|uefi-http-x64]
                                                  print its boot config
  assign <host> <role> [--profiles DIR]           change a machine's role in the YAML (comments and layout kept)
  diff [--profiles DIR] [--data DIR] [--json]     machines whose next boot would differ from what they were last served
  serve [--config FILE] [--profiles DIR] [--data DIR] [--address IP] [--http-port N] [--dhcp-mode MODE]
                                                  run DHCP, TFTP and HTTP for the provisioning address IP
  events <host|mac> [--data DIR] [--json]         a machine's boot timeline (DHCP, TFTP, HTTP, phone-home)
  images [list] [--profiles DIR] [--json]         the inventory's images: file, size, whether it is there
  images build <initramfs|test|memtest|all|roles|ROLE> [--out DIR]   build images (images/build)
  images rollback <ROLE>                          make the previous role image current again

common options: --config FILE (server config YAML), --base-url URL (as machines reach rolecast)
`;

const OPTIONS: ParseArgsConfig['options'] = {
  profiles: { type: 'string' },
  data: { type: 'string' },
  config: { type: 'string' },
  address: { type: 'string' },
  'base-url': { type: 'string' },
  'http-port': { type: 'string' },
  'dhcp-mode': { type: 'string' },
  file: { type: 'string' },
  boot: { type: 'string' },
  firmware: { type: 'string' },
  out: { type: 'string' },
  json: { type: 'boolean' },
  'exit-code': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
};

export type Flags = Record<string, string | boolean | undefined>;
type Handler = (args: string[], flags: Flags) => Promise<number>;

const COMMANDS: Record<string, Handler> = {
  validate: cmdValidate,
  machines: cmdMachines,
  render: cmdRender,
  assign: cmdAssign,
  diff: cmdDiff,
  serve: cmdServe,
  images: cmdImages,
  events: cmdEvents,
};

export async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    process.stderr.write(`rolecast: ${(err as Error).message}\n${USAGE}`);
    return 1;
  }
  const [name, ...rest] = parsed.positionals;
  if (!name || (parsed.values as Flags)['help']) {
    process.stdout.write(USAGE);
    return name ? 0 : 1;
  }
  const handler = COMMANDS[name];
  if (!handler) {
    process.stderr.write(`rolecast: unknown command "${name}"\n${USAGE}`);
    return 1;
  }
  try {
    return await handler(rest, parsed.values as Flags);
  } catch (err) {
    if (err instanceof RolecastError) {
      process.stderr.write(`rolecast ${name}: ${err.message}\n`);
      return err.code === 'E_PROFILE' || err.code === 'E_USAGE' || err.code === 'E_NOT_FOUND' ? 1 : 2;
    }
    throw err;
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
    process.exitCode = 2;
  });
}
