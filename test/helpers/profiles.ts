/**
 * Fixture profiles written by the test that uses them, so tests do not depend on the shipped example
 * (profiles/ is tested only as the example, in test/integration/inventory/example.test.ts).
 * A small site: one provisioning network with a pool, a web role and a rescue role sharing a tiny base
 * image, `machines` web hosts w001.. at 10.0.0.(10+i), and the unknown-machine policy asked for.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface FixtureOptions {
  machines?: number;
  unknown?: 'ignore' | 'rescue';
}

export function fixtureMac(i: number): string {
  return `52:54:00:10:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
}

export function fixtureHost(i: number): string {
  return `w${String(i + 1).padStart(3, '0')}`;
}

export function writeFixtureProfiles(dir: string, o: FixtureOptions = {}): void {
  const n = o.machines ?? 4;
  mkdirSync(join(dir, 'roles'), { recursive: true });
  writeFileSync(join(dir, 'rolecast.yaml'), [
    '# fixture site written by test/helpers/profiles.ts',
    'site:',
    '  domain: fixture.test',
    '  server: 10.0.0.1',
    '  http_port: 8080',
    '  boot: ipxe',
    `  unknown: ${o.unknown === 'rescue' ? '{ policy: boot, target: rescue }' : '{ policy: ignore }'}`,
    'networks:',
    '  - { name: prov, cidr: 10.0.0.0/16, gateway: 10.0.255.254, dns: [10.0.0.1], pool: { start: 10.0.200.1, end: 10.0.200.250 } }',
    'images:',
    '  kernel: { kind: kernel, path: build/vmlinuz }',
    '  initrd: { kind: initrd, path: build/initrd.img }',
    '  small-root: { kind: rootfs, path: build/rootfs/small.tar }',
    '',
  ].join('\n'));
  writeFileSync(join(dir, 'roles/web.yaml'), 'name: web\nkind: service\ndescription: web\nkernel: kernel\ninitrd: [initrd]\nrootfs: small-root\ncmdline: console=ttyS0\n');
  writeFileSync(join(dir, 'roles/db.yaml'), 'name: db\nkind: service\ndescription: db\nkernel: kernel\ninitrd: [initrd]\nrootfs: small-root\ncmdline: console=ttyS0\n');
  writeFileSync(join(dir, 'roles/rescue.yaml'), 'name: rescue\nkind: maintenance\ndescription: rescue shell\nkernel: kernel\ninitrd: [initrd]\nrootfs: small-root\ncmdline: console=ttyS0 rolecast.action=rescue\n');
  const lines = ['# fixture machines', 'machines:'];
  for (let i = 0; i < n; i++) lines.push(`  - { host: ${fixtureHost(i)}, mac: ${fixtureMac(i)}, role: web, ip: 10.0.${Math.floor((i + 10) / 250)}.${((i + 10) % 250) + 1} }`);
  writeFileSync(join(dir, 'machines.yaml'), `${lines.join('\n')}\n`);
}
