import { afterEach, describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { BUNDLED, copyProfiles, rolecast } from './helpers.js';
import { loadInventory, resolveMachine } from '../../../src/inventory/index.js';

let cleanups: Array<() => void> = [];
afterEach(() => { for (const c of cleanups) c(); cleanups = []; });
function tmpProfiles() { const t = copyProfiles(); cleanups.push(t.cleanup); return t; }

// Each test runs the CLI several times, each a Node start with the TypeScript loader: 5-10 s apiece at
// load 40, so the default 60 s is not enough on a loaded machine.
describe('rolecast CLI on the bundled profiles', { timeout: 180_000 }, () => {
  it('validate exits 0', () => {
    const r = rolecast(['validate', ...BUNDLED]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/ok \(\d+ machines/);
  });

  it('validate lists every error as file:line:col and exits 1', () => {
    const t = tmpProfiles();
    const file = join(t.profiles, 'machines.yaml');
    const text = readFileSync(file, 'utf8');
    // Two independent mistakes: a typo'd key and an unknown role.
    const broken = text.replace(/role: db\b/, 'role: dbx').replace(/host: fs1/, 'hots: fs1');
    expect(broken).not.toBe(text);
    writeFileSync(file, broken);
    const r = rolecast(['validate', '--profiles', t.profiles]);
    expect(r.code).toBe(1);
    const lines = r.stderr.trim().split('\n');
    expect(lines.filter((l) => /^machines\.yaml:\d+:\d+: machines\[\d+\]\.\S+: /.test(l)).length).toBeGreaterThanOrEqual(2);
    expect(r.stderr).toMatch(/dbx/);
    expect(r.stderr).toMatch(/hots/);
  });

  it('machines prints a table and --json', () => {
    const r = rolecast(['machines', ...BUNDLED]);
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n')[0]).toMatch(/^HOST\s+MAC\s+ROLE\s+ADDRESS/);
    for (const h of ['lb1', 'lb2', 'w101', 'w104', 'db1', 'db2', 'fs1', 'w106']) expect(r.stdout).toMatch(new RegExp(`^${h}\\s`, 'm'));
    const j = JSON.parse(rolecast(['machines', '--json', ...BUNDLED]).stdout) as Array<{ host: string; role: string; macs: string[] }>;
    expect(j.find((m) => m.host === 'lb1')?.role).toBe('lb');
    expect(j.every((m) => m.macs.every((x) => /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/.test(x)))).toBe(true);
  });

  it('render lb1 keepalived.conf draws real servers from the web machines of each site', async () => {
    const r = rolecast(['render', 'lb1', '--file', '/etc/keepalived/keepalived.conf', ...BUNDLED]);
    expect(r.code).toBe(0);
    const inv = await loadInventory(join(import.meta.dirname, '../../fixtures/profiles'));
    for (const [name, site] of Object.entries(inv.sites)) {
      const block = r.stdout.split(/^virtual_server /m).find((b) => b.startsWith(`${site.vip} ${site.port}`));
      expect(block, `virtual_server for ${name}`).toBeDefined();
      const got = [...block!.matchAll(/real_server (\S+) /g)].map((x) => x[1]).sort();
      const want = inv.machines.filter((m) => { const rm = resolveMachine(inv, m); return rm.role.name === 'web' && rm.sites.includes(name); }).map((m) => m.ip).sort();
      expect(want.length).toBeGreaterThan(0);
      expect(got).toEqual(want);
    }
    const w = ['w101', 'w102', 'w103', 'w104'].map((h) => inv.byHost.get(h)!.ip);
    for (const ip of w) expect(r.stdout).toContain(`real_server ${ip} `);
  });

  it('render lists files, --json, --boot', () => {
    const r = rolecast(['render', 'w101', ...BUNDLED]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/\/etc\/hostname/);
    expect(r.stdout).toMatch(/content hash [0-9a-f]{64}/);
    const j = JSON.parse(rolecast(['render', 'w101', '--json', ...BUNDLED]).stdout) as { files: Array<{ path: string }> };
    expect(j.files.map((f) => f.path)).toContain('/etc/network/interfaces');
    const ipxe = rolecast(['render', 'w101', '--boot', 'ipxe', ...BUNDLED]);
    expect(ipxe.code).toBe(0);
    expect(ipxe.stdout).toMatch(/^#!ipxe/);
    expect(ipxe.stdout).toMatch(/rolecast\.role=web/);
    expect(rolecast(['render', 'w101', '--boot', 'pxelinux', ...BUNDLED]).stdout).toMatch(/APPEND/i);
    expect(rolecast(['render', 'w101', '--boot', 'grub', '--firmware', 'uefi-x64', ...BUNDLED]).stdout).toMatch(/linux/);
    const none = rolecast(['render', 'nosuchhost', ...BUNDLED]);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/no machine "nosuchhost"/);
  });

  it('assign w106 lb changes what render w106 prints, keeps the rest of the file, and diff sees it', () => {
    const t = tmpProfiles();
    const file = join(t.profiles, 'machines.yaml');
    const before = readFileSync(file, 'utf8');
    const renderBefore = rolecast(['render', 'w106', '--json', '--profiles', t.profiles]);
    const hashBefore = (JSON.parse(renderBefore.stdout) as { hash: string }).hash;
    // Pretend the server served the current files to every machine.
    const served: Record<string, unknown> = {};
    const machines = JSON.parse(rolecast(['machines', '--json', '--profiles', t.profiles]).stdout) as Array<{ host: string; macs: string[]; role: string }>;
    for (const m of machines) {
      const h = (JSON.parse(rolecast(['render', m.host, '--json', '--profiles', t.profiles]).stdout) as { hash: string }).hash;
      served[m.macs[0]!] = { host: m.host, role: m.role, hash: h, at: '2026-01-01T00:00:00.000Z' };
    }
    mkdirSync(t.data, { recursive: true });
    writeFileSync(join(t.data, 'served.json'), JSON.stringify(served));
    expect(rolecast(['diff', '--profiles', t.profiles, '--data', t.data]).stdout).toMatch(/no machine would change/);

    const a = rolecast(['assign', 'w106', 'lb', '--profiles', t.profiles]);
    expect(a.stderr).toBe('');
    expect(a.code).toBe(0);
    const after = readFileSync(file, 'utf8');
    const changed = before.split('\n').map((l, i) => [l, after.split('\n')[i]]).filter(([x, y]) => x !== y);
    expect(changed).toHaveLength(1);
    expect(changed[0]![1]).toMatch(/role: lb\b/);

    const renderAfter = JSON.parse(rolecast(['render', 'w106', '--json', '--profiles', t.profiles]).stdout) as { hash: string; role: string; files: Array<{ path: string }> };
    expect(renderAfter.hash).not.toBe(hashBefore);
    expect(renderAfter.role).toBe('lb');
    expect(renderAfter.files.map((f) => f.path)).toContain('/etc/keepalived/keepalived.conf');
    const diff = rolecast(['diff', '--profiles', t.profiles, '--data', t.data, '--exit-code']);
    expect(diff.code).toBe(1);
    expect(diff.stdout).toMatch(/^w106\s+changed\s+lb\s+web/m);

    writeFileSync(join(t.data, 'events.jsonl'), `${JSON.stringify({ mac: '52:54:00:00:02:06', stage: 'booted', at: '2026-01-01T00:00:00.000Z', detail: 'up' })}\n{torn`);
    const ev = rolecast(['events', 'w106', '--profiles', t.profiles, '--data', t.data]);
    expect(ev.stdout).toMatch(/^2026-01-01T00:00:00\.000Z\s+booted\s+-\s+up$/m);

    const bad = rolecast(['assign', 'w106', 'nosuchrole', '--profiles', t.profiles]);
    expect(bad.code).toBe(1);
    expect(readFileSync(file, 'utf8')).toBe(after);
  }, 180_000); // ~25 command runs, each a Node start
});
