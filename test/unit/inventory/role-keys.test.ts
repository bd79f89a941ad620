/**
 * Per-instance VRRP priority/state (a box MASTER of one instance and BACKUP of another) beside the
 * machine-wide form, and machine keys that mean nothing for the machine's role reported with the reason.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { buildInventory, resolveMachine } from '../../../src/inventory/index.js';
import type { SourceFile } from '../../../src/inventory/load.js';
import { ProfileError, formatIssue } from '../../../src/errors.js';
import { renderMachineFiles } from '../../../src/render/index.js';

const PROFILES = resolve(import.meta.dirname, '../../fixtures/profiles');
const LB1 = '  - { host: lb1, mac: [52:54:00:00:01:01, 52:54:00:00:11:01], role: lb, ip: 10.0.0.11, addresses: { wan: 203.0.113.2 }, ';

function sources(lb1Tail: string, extra: (t: string) => string = (t) => t): SourceFile[] {
  const names = ['rolecast.yaml', 'machines.yaml', 'secrets.yaml', ...readdirSync(join(PROFILES, 'roles')).map((f) => `roles/${f}`)];
  return names.map((name) => {
    let text = readFileSync(join(PROFILES, name), 'utf8');
    if (name === 'machines.yaml') {
      const i = text.indexOf(LB1);
      if (i < 0) throw new Error('lb1 line changed');
      const end = text.indexOf('\n', i);
      text = extra(`${text.slice(0, i)}${LB1}${lb1Tail}${text.slice(end)}`);
    }
    return { name, text };
  });
}

function issues(src: SourceFile[]): string[] {
  try { buildInventory(src, PROFILES); } catch (err) { if (err instanceof ProfileError) return err.issues.map(formatIssue); throw err; }
  return [];
}

/** state and priority of each vrrp_instance in lb1's keepalived.conf. */
function instances(src: SourceFile[]): Record<string, string> {
  const inv = buildInventory(src, PROFILES);
  const conf = renderMachineFiles(resolveMachine(inv, inv.byHost.get('lb1')!), inv, { baseUrl: 'http://10.0.0.1:8080', server: '10.0.0.1' }).find((f) => f.path === '/etc/keepalived/keepalived.conf')!.content;
  return Object.fromEntries([...conf.matchAll(/vrrp_instance (\S+) \{\n\s+state (\S+)\n(?:.*\n)*?\s+priority (\d+)/g)].map((m) => [m[1]!, `${m[2]} ${m[3]}`]));
}

describe('VRRP per instance', () => {
  it('the machine-wide form still sets every instance', () => {
    expect(instances(sources('vrrp: { priority: 150, state: MASTER } }'))).toEqual({ VI_WAN: 'MASTER 150', VI_PROV: 'MASTER 150' });
  });

  it('per instance: MASTER of one, BACKUP of the other', () => {
    expect(instances(sources('vrrp: { VI_WAN: { priority: 150, state: MASTER }, VI_PROV: { priority: 90, state: BACKUP } } }'))).toEqual({ VI_WAN: 'MASTER 150', VI_PROV: 'BACKUP 90' });
  });

  it('mixed: machine-wide defaults, one instance overridden (missing keys inherit)', () => {
    expect(instances(sources('vrrp: { priority: 120, state: BACKUP, VI_PROV: { state: MASTER } } }'))).toEqual({ VI_WAN: 'BACKUP 120', VI_PROV: 'MASTER 120' });
  });

  it('an instance the role does not have, and a bad value, are errors at their line', () => {
    const got = issues(sources('vrrp: { VI_LAN: { priority: 150 }, VI_WAN: { priority: 300 } } }'));
    expect(got).toEqual(expect.arrayContaining([
      expect.stringMatching(/^machines\.yaml:\d+:\d+: machines\[0\]\.vrrp\.VI_LAN: role "lb" has no VRRP instance "VI_LAN" \(it has: VI_WAN, VI_PROV\)$/),
      expect.stringMatching(/^machines\.yaml:\d+:\d+: machines\[0\]\.vrrp\.VI_WAN\.priority: 300 is out of range 1–254$/),
    ]));
  });
});

describe('keys that mean nothing for the role', () => {
  it('sites on a load balancer', () => {
    const got = issues(sources('vrrp: { priority: 150, state: MASTER }, sites: [SiteA] }'));
    expect(got).toEqual([expect.stringMatching(/^machines\.yaml:\d+:\d+: machines\[0\]\.sites: sites means nothing for role "lb": it runs keepalived and balances sites/)]);
  });

  it('vrrp on a web machine', () => {
    const src = sources('vrrp: { priority: 150, state: MASTER } }', (t) => t.replace('role: web, ip: 10.0.0.101, sites: [SiteA] }', 'role: web, ip: 10.0.0.101, sites: [SiteA], vrrp: { priority: 10 } }'));
    expect(issues(src)).toEqual([expect.stringMatching(/^machines\.yaml:\d+:\d+: machines\[2\]\.vrrp: role "web" runs no keepalived VRRP instance, so vrrp means nothing for w101/)]);
  });

  it('the spare\'s empty sites list may stay when it becomes a load balancer', () => {
    const src = sources('vrrp: { priority: 150, state: MASTER } }', (t) => t.replace(/(host: w106, .*?)role: web/, '$1role: lb'));
    expect(issues(src)).toEqual([]);
  });
});
