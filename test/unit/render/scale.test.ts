/**
 * Rendering stays O(N) per inventory version: /etc/hosts (every machine) is rendered once per snapshot
 * and shared, large files enter content hashes through a memoised digest, and real servers are found
 * in one pass. A 3,000-machine inventory renders every machine's files well inside a quadratic bound.
 */
import { describe, expect, it } from 'vitest';
import { join, resolve } from 'node:path';
import { readdirSync, readFileSync } from 'node:fs';
import { buildInventory, resolveMachine } from '../../../src/inventory/index.js';
import { machineContentHash, renderMachineFiles } from '../../../src/render/index.js';
import { virtualServerText, warmVirtualServerText } from '../../../src/render/keepalived.js';
import type { SourceFile } from '../../../src/inventory/load.js';

const ROOT = resolve(import.meta.dirname, '../../..');
const ctx = { baseUrl: 'http://10.0.0.1:8080', server: '10.0.0.1' };
const hex = (n: number) => n.toString(16).padStart(2, '0');

function sources(n: number, lastIp = ''): SourceFile[] {
  const dir = join(ROOT, 'test/fixtures/profiles');
  const site = readFileSync(join(dir, 'rolecast.yaml'), 'utf8').replace('cidr: 10.0.0.0/24', 'cidr: 10.0.0.0/16').replace('pool: { start: 10.0.0.200, end: 10.0.0.249 }', 'pool: { start: 10.0.250.0, end: 10.0.250.9 }');
  const lines = ['machines:',
    '  - { host: lb1, mac: [52:54:00:00:01:01, 52:54:00:00:11:01], role: lb, ip: 10.0.0.11, addresses: { wan: 203.0.113.2 }, vrrp: { priority: 150, state: MASTER } }'];
  for (let i = 0; i < n; i++) {
    const ip = i === n - 1 && lastIp ? lastIp : `10.0.${1 + (i >> 8)}.${i & 255}`;
    lines.push(`  - { host: w${i}, mac: [52:54:01:00:${hex(i >> 8)}:${hex(i & 255)}, 52:54:02:00:${hex(i >> 8)}:${hex(i & 255)}], role: web, ip: ${ip}, sites: [SiteA] }`);
  }
  const roles = readdirSync(join(dir, 'roles')).map((f) => ({ name: `roles/${f}`, text: readFileSync(join(dir, 'roles', f), 'utf8') }));
  return [{ name: 'rolecast.yaml', text: site }, { name: 'machines.yaml', text: `${lines.join('\n')}\n` }, { name: 'secrets.yaml', text: readFileSync(join(dir, 'secrets.yaml'), 'utf8') }, ...roles];
}

describe('rendering at scale', () => {
  const inv = buildInventory(sources(3000), '/profiles');
  const filesOf = (host: string) => renderMachineFiles(resolveMachine(inv, inv.byHost.get(host)!), inv, ctx);

  it('shares one /etc/hosts per snapshot and lists every machine in it', () => {
    const a = filesOf('w1').find((f) => f.path === '/etc/hosts')!;
    const b = filesOf('w2').find((f) => f.path === '/etc/hosts')!;
    expect(a).toBe(b);
    expect(a.content.split('\n').filter((l) => l.startsWith('10.0.')).length).toBe(3001);
    expect(a.content).not.toContain('127.0.1.1');
  });

  it('a change to a shared file changes every machine\'s content hash', () => {
    const other = buildInventory(sources(3000, '10.0.200.1'), '/profiles');
    const h = (i: typeof inv, host: string) => machineContentHash(renderMachineFiles(resolveMachine(i, i.byHost.get(host)!), i, ctx));
    expect(h(other, 'w5')).not.toBe(h(inv, 'w5'));
    expect(h(inv, 'w5')).toBe(h(inv, 'w5'));
  });

  it('renders and hashes every machine in linear time (a complexity guard, not a speed target)', () => {
    const t = process.cpuUsage();
    for (const m of inv.machines) machineContentHash(renderMachineFiles(resolveMachine(inv, m), inv, ctx));
    const used = process.cpuUsage(t);
    // CPU time, not wall time (the CI machine is shared): quadratic rendering took ~3.5 ms per machine
    // at 3,000 (~10 s of CPU); linear takes ~0.3 ms per machine here.
    expect((used.user + used.system) / 1e6).toBeLessThan(8);
  });

  it('the load balancer lists every web machine of its site as a real server', () => {
    const ka = filesOf('lb1').find((f) => f.path === '/etc/keepalived/keepalived.conf')!;
    expect(ka.content.match(/real_server /g)?.length).toBe(3000);
  });
  it('makes a site\'s real-server block ahead in parts, the same text as in one go', async () => {
    for (const [n, every] of [[0, 7], [5, 7], [14, 7], [15, 7], [300, 500], [3000, 500]] as const) {
      const a = buildInventory(sources(n), '/profiles');
      const b = buildInventory(sources(n), '/profiles');
      let turns = 0;
      await warmVirtualServerText(a, 'SiteA', async () => { turns++; }, every);
      expect(turns).toBe(Math.ceil(n / every));
      expect(virtualServerText(a, 'SiteA'), `${n} real servers`).toBe(virtualServerText(b, 'SiteA'));
      await warmVirtualServerText(a, 'NoSuchSite', async () => { turns++; }, every); // left to the render, which says so
      expect(() => virtualServerText(a, 'NoSuchSite')).toThrow(/unknown site/);
    }
  });
});
