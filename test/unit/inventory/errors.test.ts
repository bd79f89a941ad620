/** Every class of profile error, with its exact message and position. Sources are built in memory. */
import { describe, expect, it } from 'vitest';
import { readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseSources, type SourceFile } from '../../../src/inventory/load.js';
import { ProfileError, formatIssue } from '../../../src/errors.js';

const PROFILES = resolve(import.meta.dirname, '../../fixtures/profiles');

/** The bundled profiles as sources, with edits applied by file name. */
function bundled(edit: Record<string, (text: string) => string> = {}): SourceFile[] {
  const names = ['rolecast.yaml', 'machines.yaml', 'secrets.yaml', ...readdirSync(join(PROFILES, 'roles')).map((f) => `roles/${f}`)];
  return names.map((name) => {
    const text = readFileSync(join(PROFILES, name), 'utf8');
    const fn = edit[name];
    const out = fn ? fn(text) : text;
    if (fn && out === text) throw new Error(`edit of ${name} changed nothing`);
    return { name, text: out };
  });
}

function errors(sources: SourceFile[]): string[] {
  try {
    parseSources(sources);
  } catch (err) {
    if (err instanceof ProfileError) return err.issues.map(formatIssue);
    throw err;
  }
  return [];
}

const M = 'machines.yaml';
const line = (text: string, pat: string) => text.split('\n').findIndex((l) => l.includes(pat)) + 1;
const machinesText = readFileSync(join(PROFILES, M), 'utf8');
const L = (pat: string) => line(machinesText, pat);

describe('profile validation: exact messages', () => {
  it('the bundled profiles are valid', () => expect(errors(bundled())).toEqual([]));

  const cases: Array<[string, Record<string, (t: string) => string>, string[]]> = [
    ['bad MAC', { [M]: (t) => t.replace('52:54:00:00:03:01,', '52:54:00:00:03:zz,') },
      ['machines.yaml:13:24: machines[6].mac[0]: "52:54:00:00:03:zz" is not a MAC address (want six hex pairs like 52:54:00:12:34:56)']],
    ['duplicate MAC across machines', { [M]: (t) => t.replace('52:54:00:00:03:02,', '52:54:00:00:03:01,') },
      ['machines.yaml:14:24: machines[7].mac[0]: duplicate MAC 52:54:00:00:03:01 (also db1 at machines.yaml:13)']],
    ['duplicate MAC within one machine', { [M]: (t) => t.replace('52:54:00:00:13:01]', '52:54:00:00:03:01]') },
      ['machines.yaml:13:43: machines[6].mac[1]: duplicate MAC 52:54:00:00:03:01 (listed twice for db1)']],
    ['duplicate IP', { [M]: (t) => t.replace('ip: 10.0.0.32', 'ip: 10.0.0.31') },
      ['machines.yaml:14:77: machines[7].ip: duplicate IP 10.0.0.31 (also db1 at machines.yaml:13)']],
    ['duplicate host name', { [M]: (t) => t.replace('host: db2', 'host: db1') },
      ['machines.yaml:14:13: machines[7].host: duplicate host name "db1" (also at machines.yaml:13)']],
    ['unknown role', { [M]: (t) => t.replace('role: file', 'role: files') },
      ['machines.yaml:15:69: machines[8].role: unknown role "files" (roles: db, discover, file, lb, memtest, rescue, test, web, wipe)']],
    ['unknown key (typo)', { [M]: (t) => t.replace('host: fs1', 'hots: fs1') },
      ['machines.yaml:15:5: machines[8]: missing required key "host"',
        'machines.yaml:15:7: machines[8].hots: unknown key "hots" (allowed: host, mac, role, ip, addresses, vrrp, sites, cmdline, boot, loaders, boot_once, confirm_wipe, uuid, files, bmc)']],
    ['unknown image', { 'roles/db.yaml': (t) => t.replace('rootfs: db-root', 'rootfs: db-rot') },
      ['roles/db.yaml:6:9: rootfs: unknown image "db-rot" (images in rolecast.yaml: kernel, initrd, lb-root, web-root, db-root, file-root, test-root, memtest-bios, memtest-efi)']],
    ['per-firmware kernel of the wrong kind', { 'roles/memtest.yaml': (t) => t.replace('uefi-x64: memtest-efi', 'uefi-x64: lb-root') },
      ['roles/memtest.yaml:6:13: kernels.uefi-x64: image "lb-root" is a rootfs, expected kernel or binary']],
    ['per-firmware kernel for a firmware that does not exist', { 'roles/memtest.yaml': (t) => t.replace('uefi-x64: memtest-efi', 'uefi-x65: memtest-efi') },
      ['roles/memtest.yaml:6:3: kernels.uefi-x65: unknown key "uefi-x65" (allowed: bios, uefi-ia32, uefi-x64, uefi-arm32, uefi-arm64, uefi-http-x64, uefi-http-arm64)']],
    ['image of the wrong kind', { 'roles/db.yaml': (t) => t.replace('rootfs: db-root', 'rootfs: kernel') },
      ['roles/db.yaml:6:9: rootfs: image "kernel" is a kernel, expected rootfs']],
    ['VLAN id out of range', { 'roles/lb.yaml': (t) => t.replace('id: 100', 'id: 4095') },
      ['roles/lb.yaml:11:13: network.vlans[0].id: 4095 is out of range 1–4094']],
    ['unknown network', { 'roles/lb.yaml': (t) => t.replace('network: wan }', 'network: wann }') },
      ['roles/lb.yaml:11:27: network.vlans[0].network: unknown network "wann"']],
    ['bond with fewer than two slaves', { [M]: (t) => t.replace('[52:54:00:00:04:01, 52:54:00:00:14:01]', '52:54:00:00:04:01') },
      ['machines.yaml:15:23: machines[8].mac: role "file" bonds bond0, which needs at least two slave NICs; fs1 has 1']],
    ['duplicate virtual_router_id on one interface', { 'roles/lb.yaml': (t) => t.replace('virtual_router_id: 52', 'virtual_router_id: 51').replace('interface: bond0\n', 'interface: bond0.100\n') },
      ['roles/lb.yaml:24:26: keepalived.vrrp[1].virtual_router_id: duplicate virtual_router_id 51 on interface bond0.100 (also roles/lb.yaml VI_WAN)']],
    ['VIP outside every network', { 'roles/lb.yaml': (t) => t.replace('203.0.113.11/24', '198.51.100.11/24') },
      ['roles/lb.yaml:19:31: keepalived.vrrp[0].vips[1]: VIP 198.51.100.11/24 is outside every declared network']],
    ['site VIP outside every network', { 'rolecast.yaml': (t) => t.replace('vip: 203.0.113.11', 'vip: 198.51.100.11') },
      ['rolecast.yaml:45:10: sites.SiteB.vip: VIP 198.51.100.11 is outside every declared network']],
    ['machine address outside its network', { [M]: (t) => t.replace('wan: 203.0.113.3', 'wan: 10.0.0.3') },
      ['machines.yaml:6:106: machines[1].addresses.wan: 10.0.0.3 is outside network wan (203.0.113.0/24)']],
    ['unknown site', { [M]: (t) => t.replace('sites: [SiteB] }', 'sites: [SiteC] }') },
      ['machines.yaml:10:99: machines[4].sites[0]: unknown site "SiteC"']],
    ['secret not defined', { 'secrets.yaml': (t) => t.replace('vrrp_prov: Hs8nW2dR\n', '') },
      ['roles/lb.yaml:28:20: keepalived.vrrp[1].auth_secret: secret "vrrp_prov" is not defined in secrets.yaml']],
    ['destructive target without confirm_wipe', { [M]: (t) => t.replace('role: file,', 'role: file, boot_once: wipe,') },
      ['machines.yaml:15:86: machines[8].boot_once: "wipe" is destructive: set confirm_wipe: true on this machine to allow it']],
    ['role name and file name differ', { 'roles/db.yaml': (t) => t.replace('name: db', 'name: database') },
      ['machines.yaml:13:69: machines[6].role: unknown role "db" (roles: discover, file, lb, memtest, rescue, test, web, wipe)',
        'machines.yaml:14:69: machines[7].role: unknown role "db" (roles: discover, file, lb, memtest, rescue, test, web, wipe)',
        'roles/db.yaml:1:7: name: role "database" must live in roles/database.yaml (file name and role name differ)']],
    ['wrong type', { 'rolecast.yaml': (t) => t.replace('http_port: 8080', 'http_port: eighty') },
      ['rolecast.yaml:6:14: site.http_port: must be an integer 1–65535']],
    ['YAML syntax error', { [M]: (t) => t.replace('role: db, ip: 10.0.0.31 }', 'role: db, ip: 10.0.0.31') },
      [`machines.yaml:${L('host: db2')}:3: (yaml): Missing , or : between flow map items`]],
  ];

  it.each(cases)('%s', (_name, edit, expected) => {
    const got = errors(bundled(edit));
    if (expected[0]?.includes('(yaml)')) {
      expect(got.length).toBeGreaterThan(0);
      expect(got[0]).toMatch(/^machines\.yaml:\d+:\d+: \(yaml\): /);
      return;
    }
    expect(got).toEqual(expected);
  });

  it('reports several errors in several files at once, sorted', () => {
    const got = errors(bundled({
      [M]: (t) => t.replace('role: file', 'role: files').replace('52:54:00:00:03:01,', 'zz,'),
      'roles/lb.yaml': (t) => t.replace('id: 100', 'id: 0'),
    }));
    expect(got).toHaveLength(3);
    expect(got.map((g) => g.split(':')[0])).toEqual(['machines.yaml', 'machines.yaml', 'roles/lb.yaml']);
  });

  it('keeps MACs as strings (YAML 1.2): a 1.1 parser would read 12:34:56 style values as base-60 numbers', () => {
    const src = bundled({ [M]: (t) => t.replace('[52:54:00:00:04:01, 52:54:00:00:14:01]', '[10:20:30:40:50:01, 10:20:30:40:50:02]') });
    const p = parseSources(src);
    expect(p.machines.find((m) => m.host === 'fs1')?.macs).toEqual(['10:20:30:40:50:01', '10:20:30:40:50:02']);
  });
});
