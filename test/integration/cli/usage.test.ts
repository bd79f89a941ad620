/**
 * The command line as an operator meets it: help and version exit 0, every command's own help lists every
 * flag it takes with examples, usage errors exit 2 with a suggestion, defaults never point at the package's
 * own example, ROLECAST_CONFIG and --images, MAC or host wherever a machine is named.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { BUNDLED, copyProfiles, ROOT, rolecast, rolecastHere } from './helpers.js';
import { COMMANDS } from '../../../src/commands/index.js';

let cleanups: Array<() => void> = [];
afterEach(() => { for (const c of cleanups) c(); cleanups = []; });
function tmpProfiles() { const t = copyProfiles(); cleanups.push(t.cleanup); return t; }

const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

describe('rolecast help, version and usage errors', () => {
  it('--help and help exit 0 and list every command; no command exits 2', async () => {
    for (const args of [['--help'], ['-h'], ['help']]) {
      const r = await rolecastHere(args);
      expect(r.code, args.join(' ')).toBe(0);
      for (const c of COMMANDS) expect(r.stdout).toMatch(new RegExp(`^  ${c.name}\\s`, 'm'));
    }
    const none = await rolecastHere([]);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/usage: rolecast <command>/);
  });

  it('--version prints the package version', async () => {
    const r = await rolecastHere(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`rolecast ${version}\n`);
  });

  it('each command has its own help with every flag it takes and examples (help X and X --help agree)', async () => {
    const specs = COMMANDS.flatMap((c) => (c.subcommands ?? []).map((s) => ({ args: [c.name, s.name], spec: s })).concat([{ args: [c.name], spec: c }]));
    for (const { args, spec } of specs) {
      const a = await rolecastHere(['help', ...args]);
      const b = await rolecastHere([...args, '--help']);
      expect(a.code, args.join(' ')).toBe(0);
      expect(b.code).toBe(0);
      expect(a.stdout).toBe(b.stdout);
      expect(a.stdout).toMatch(new RegExp(`^usage: rolecast ${args.join(' ')}`));
      for (const f of Object.keys(spec.flags)) expect(a.stdout, `${args.join(' ')} --${f}`).toContain(`--${f}`);
      if (spec.run) expect(a.stdout, `${args.join(' ')} examples`).toMatch(/examples:\n {2}rolecast /);
    }
  });

  it('an unknown flag is an error with a suggestion, exit 2', async () => {
    const r = await rolecastHere(['render', 'w101', '--profile', 'profiles']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown option --profile \(did you mean --profiles\?\)/);
  });

  it('a flag of another command is an error naming what this one takes, exit 2', async () => {
    const r = await rolecastHere(['assign', 'w106', 'lb', '--json', ...BUNDLED]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--json does not apply to assign \(assign takes: --profiles --config --reboot --data --timeout --help\)/);
  });

  it('wrong argument counts, unknown commands and targets exit 2', async () => {
    expect((await rolecastHere(['render', ...BUNDLED])).code).toBe(2);
    expect((await rolecastHere(['validate', 'extra', ...BUNDLED])).code).toBe(2);
    const typo = await rolecastHere(['valdate']);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toMatch(/unknown command "valdate" \(did you mean "validate"\?\)/);
    const img = await rolecastHere(['images', 'build', 'foo']);
    expect(img.code).toBe(2);
    expect(img.stderr).toMatch(/unknown target "foo" \(one of: initramfs, test, memtest, all/);
    const sw = await rolecastHere(['machines', '--json=yes', ...BUNDLED]);
    expect(sw.code).toBe(2);
    expect((await rolecastHere(['serve', '--http-port', '99999', ...BUNDLED])).code).toBe(2);
  });

  it('the man page is valid roff with every flag of every command', async () => {
    const r = await rolecastHere(['help', '--man']);
    expect(r.code).toBe(0);
    const g = spawnSync('groff', ['-man', '-Tutf8', '-ww', '-z'], { input: r.stdout, encoding: 'utf8' });
    expect(g.status).toBe(0);
    expect(g.stderr).toBe('');
    for (const c of COMMANDS) for (const s of [c, ...(c.subcommands ?? [])]) for (const f of Object.keys(s.flags)) expect(r.stdout).toContain(`\\-\\-${f.replace(/-/g, '\\-')}`);
  });
});

describe('defaults and where things are', () => {
  it('without --profiles or a config, the profiles are /etc/rolecast/profiles, never the bundled example', () => {
    if (existsSync('/etc/rolecast')) return; // an installed rolecast on this host: its config is the default
    const t = tmpProfiles();
    const r = rolecast(['assign', 'w106', 'lb'], t.dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/profiles directory \/etc\/rolecast\/profiles does not exist: pass --profiles DIR/);
    expect(readFileSync(join(ROOT, 'profiles/machines.yaml'), 'utf8')).toMatch(/host: w106.*role: web/);
  });

  it('ROLECAST_CONFIG names the config; its relative paths are relative to it, from any working directory', () => {
    const t = tmpProfiles();
    mkdirSync(t.data, { recursive: true });
    writeFileSync(join(t.data, 'events.jsonl'), `${JSON.stringify({ mac: '52:54:00:00:02:06', stage: 'booted', at: '2026-01-01T00:00:00.000Z', detail: 'up' })}\n`);
    writeFileSync(join(t.dir, 'rc.yaml'), 'profilesDir: profiles\ndataDir: data\nimagesDir: img\n');
    const env = { ROLECAST_CONFIG: join(t.dir, 'rc.yaml') };
    const ev = rolecast(['events', 'w106'], '/', env);
    expect(ev.code, ev.stderr).toBe(0);
    expect(ev.stdout).toMatch(/booted\s+-\s+up/);
    const imgs = JSON.parse(rolecast(['images', 'list', '--json'], '/', env).stdout) as Array<{ file: string }>;
    expect(imgs.every((i) => i.file.startsWith(join(t.dir, 'img')))).toBe(true);
    const missing = rolecast(['machines'], '/', { ROLECAST_CONFIG: join(t.dir, 'nope.yaml') });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/config file .*nope\.yaml \(named by \$ROLECAST_CONFIG\) does not exist/);
  });

  it('--images DIR chooses the images directory', () => {
    const r = JSON.parse(rolecast(['images', '--json', ...BUNDLED, '--images', '/srv/img']).stdout) as Array<{ name: string; file: string; roles: string[] }>;
    expect(r.find((i) => i.name === 'kernel')?.file).toBe('/srv/img/build/vmlinuz');
  });

  it('images list counts roles that use an image through kernels:', async () => {
    const { loadInventory } = await import('../../../src/inventory/index.js');
    const inv = await loadInventory(join(ROOT, 'test/fixtures/profiles'));
    const viaKernels = Object.values(inv.roles).flatMap((role) => Object.values(role.kernels).map((img) => ({ role: role.name, img })));
    expect(viaKernels.length).toBeGreaterThan(0);
    const rows = JSON.parse(rolecast(['images', '--json', ...BUNDLED]).stdout) as Array<{ name: string; roles: string[] }>;
    for (const { role, img } of viaKernels) expect(rows.find((r) => r.name === img)?.roles).toContain(role);
  });

  it('assign and render take a MAC as well as a host', () => {
    const t = tmpProfiles();
    const a = rolecast(['assign', '52:54:00:00:02:06', 'lb', '--profiles', t.profiles]);
    expect(a.code, a.stderr).toBe(0);
    expect(a.stdout).toMatch(/^w106: role lb/);
    const r = JSON.parse(rolecast(['render', '52-54-00-00-02-06', '--json', '--profiles', t.profiles]).stdout) as { host: string; role: string };
    expect(r).toMatchObject({ host: 'w106', role: 'lb' });
  });
});
