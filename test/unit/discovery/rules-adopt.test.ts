import { describe, expect, it } from 'vitest';
import { parseDocument } from 'yaml';
import { firstMatch, freeAddress, globMatch, hostFromTemplate, ruleMatches } from '../../../src/discovery/rules.js';
import { appendMachine, machineLine, planAdoption, AdoptError } from '../../../src/discovery/adopt.js';
import { ingest } from '../../../src/discovery/inbox.js';
import { diffFacts } from '../../../src/discovery/diff.js';
import { ProfileError } from '../../../src/errors.js';
import { buildInventory } from '../../../src/inventory/index.js';
import { BUNDLED_PROFILES } from '../../../src/commands/common.js';
import { bundled, inventoryWith, report } from './fixture.js';

const RULES = `
discovery:
  addresses: { start: 10.0.0.150, end: 10.0.0.152 }
  rules:
    - name: rack-a
      match: { serial_prefix: RC-, nics: 2, memory_mib_min: 256, lldp_system: lab-*, lldp_port: "tap?" }
      host: "web-{serial}"
      role: test
      addresses: { start: 10.0.0.160, end: 10.0.0.161 }
      auto: true
    - name: any-one-nic
      match: { nics: 1 }
      host: "box{n}"
      role: test
`;

describe('discovery rules', () => {
  it('parse from rolecast.yaml, every condition must hold, first match wins', async () => {
    const inv = await inventoryWith(RULES);
    expect(inv.discovery.addresses).toEqual({ start: '10.0.0.150', end: '10.0.0.152' });
    expect(inv.discovery.rules[0]).toMatchObject({ name: 'rack-a', auto: true, role: 'test', match: { serialPrefix: 'RC-', nics: 2, memoryMiBMin: 256, lldpSystem: 'lab-*', lldpPort: 'tap?' } });
    expect(firstMatch(inv.discovery.rules, report())?.name).toBe('rack-a');
    expect(ruleMatches(inv.discovery.rules[0]!, report({ serial: 'XX-1' }))).toBe(false);
    expect(ruleMatches(inv.discovery.rules[0]!, { ...report(), memoryMiB: 128 })).toBe(false);
    expect(ruleMatches(inv.discovery.rules[0]!, report({ nics: report().nics.map((n) => ({ ...n, lldp: undefined })) }))).toBe(false);
    expect(firstMatch(inv.discovery.rules, report({ macs: ['52:54:00:aa:00:09'] }))?.name).toBe('any-one-nic');
  });

  it('refuse a rule naming an unknown role or a range outside every network, with file:line', async () => {
    const bad = RULES.replace('role: test\n      addresses: { start: 10.0.0.160, end: 10.0.0.161', 'role: tset\n      addresses: { start: 10.0.0.160, end: 10.0.1.5');
    await expect(inventoryWith(bad)).rejects.toThrow(ProfileError);
    const err = await inventoryWith(bad).catch((e: ProfileError) => e);
    expect((err as ProfileError).issues.map((i) => `${i.file}:${i.line}: ${i.path}: ${i.message}`)).toEqual([
      expect.stringMatching(/^rolecast\.yaml:\d+: discovery\.rules\[0\]\.role: unknown role "tset"/),
      expect.stringMatching(/^rolecast\.yaml:\d+: discovery\.rules\[0\]\.addresses: 10\.0\.0\.160–10\.0\.1\.5 is not inside one declared network/),
    ]);
  });

  it('host templates: placeholders, {n} counts up past taken names, missing facts give no name', () => {
    const taken = (h: string) => h === 'box1' || h === 'box2';
    expect(hostFromTemplate('web-{serial}', report(), '52:54:00:aa:00:01', () => false)).toBe('web-rc-0001');
    expect(hostFromTemplate('box{n}', report(), '52:54:00:aa:00:01', taken)).toBe('box3');
    expect(hostFromTemplate('{switch}-{port}', report(), '52:54:00:aa:00:01', () => false)).toBe('lab-switch-tap0');
    expect(hostFromTemplate('m{mac}', report(), '52:54:00:aa:00:01', () => false)).toBe('m525400aa0001');
    expect(hostFromTemplate('web-{serial}', { ...report(), system: {} }, '52:54:00:aa:00:01', () => false)).toBeUndefined();
    expect(globMatch('Ethernet1/*', 'ethernet1/12')).toBe(true);
    expect(freeAddress({ start: '10.0.0.1', end: '10.0.0.3' }, (ip) => ip !== '10.0.0.3')).toBe('10.0.0.3');
    expect(freeAddress({ start: '10.0.0.1', end: '10.0.0.2' }, () => true)).toBeUndefined();
  });
});

describe('adoption', () => {
  const waiting = async (inv = inventoryWith()) => ingest({ mac: '52:54:00:aa:00:02', facts: report(), from: '10.0.0.200', now: 'T' }, [], await inv).record;

  it('one line: every NIC MAC (the booting one first), role, address, UUID; refusals name the problem', async () => {
    const inv = await inventoryWith(RULES);
    const rec = await waiting();
    const a = planAdoption(rec, { host: 'w200', role: 'test', ip: '10.0.0.150' }, inv, () => false);
    expect(a).toMatchObject({ host: 'w200', role: 'test', ip: '10.0.0.150', macs: ['52:54:00:aa:00:02', '52:54:00:aa:00:01'], uuid: '4c4c4544-0001-4a10-8000-b2c04f000001' });
    expect(machineLine(a, '  ', { serial: 'RC-0001' })).toBe('  - { host: w200, mac: [52:54:00:aa:00:02, 52:54:00:aa:00:01], role: test, ip: 10.0.0.150, uuid: 4c4c4544-0001-4a10-8000-b2c04f000001 }   # discovered: serial RC-0001\n');
    expect(planAdoption(rec, { host: 'w201', role: 'test' }, inv, (ip) => ip === '10.0.0.150').ip).toBe('10.0.0.151');
    const refuse = (req: Parameters<typeof planAdoption>[1], inUse = () => false) => {
      try { planAdoption(rec, req, inv, inUse); } catch (e) { return `${(e as AdoptError).code} ${(e as Error).message}`; }
      return 'accepted';
    };
    expect(refuse({ host: 'w101', role: 'test', ip: '10.0.0.150' })).toMatch(/^E_ADOPT_HOST host "w101" already exists \(machines\.yaml:\d+\)/);
    expect(refuse({ host: 'W_1', role: 'test', ip: '10.0.0.150' })).toMatch(/^E_ADOPT_HOST "W_1" is not a host name/);
    expect(refuse({ host: 'w200', role: 'webb', ip: '10.0.0.150' })).toMatch(/^E_ADOPT_ROLE unknown role "webb" \(roles: db, discover, file/);
    expect(refuse({ host: 'w200', role: 'test', ip: '10.0.0.101' })).toBe('E_ADOPT_ADDRESS address 10.0.0.101 is in use by w101');
    expect(refuse({ host: 'w200', role: 'test', ip: '10.0.0.150' }, () => true)).toBe('E_ADOPT_ADDRESS address 10.0.0.150 is leased to another machine right now');
    expect(refuse({ host: 'w200', role: 'test' }, () => true)).toBe('E_ADOPT_ADDRESS no free address left in 10.0.0.150–10.0.0.152');
    const noRange = await inventoryWith();
    expect(() => planAdoption(rec, { host: 'w200', role: 'test' }, noRange, () => false)).toThrow(/give --ip, or set discovery.addresses/);
    expect(() => planAdoption({ ...rec, state: 'adopted', host: 'w200' }, { host: 'w201', role: 'test', ip: '10.0.0.150' }, inv, () => false)).toThrow(/already adopted as w200/);
  });

  it('appends after the last machine with its indentation; every other byte of machines.yaml stays', async () => {
    const src = (await bundled()).find((s) => s.name === 'machines.yaml')!;
    const text = `${src.text}# trailing comment kept\n`;
    const out = appendMachine(text, (indent) => `${indent}- { host: w200, mac: [52:54:00:aa:00:02], role: test, ip: 10.0.0.150 }\n`);
    const lines = out.split('\n');
    const added = lines.findIndex((l) => l.includes('w200'));
    expect(out.replace(`${lines[added]}\n`, '')).toBe(text);
    expect(lines[added - 1]).toContain('host: w106');
    expect(lines[added]).toBe('  - { host: w200, mac: [52:54:00:aa:00:02], role: test, ip: 10.0.0.150 }');
    // The result is a valid profile set with one machine more.
    const sources = (await bundled()).map((s) => (s.name === 'machines.yaml' ? { ...s, text: out } : s));
    expect(buildInventory(sources, BUNDLED_PROFILES).byHost.get('w200')?.ip).toBe('10.0.0.150');
    expect(appendMachine('machines:\n', (i) => `${i}- { host: a }\n`)).toBe('machines:\n  - { host: a }\n');
    expect(parseDocument(appendMachine('# x\nmachines:\n    - { host: a }   # a\n', (i) => `${i}- { host: b }\n`)).toJS()).toEqual({ machines: [{ host: 'a' }, { host: 'b' }] });
  });
});

describe('facts diff', () => {
  it('names a disk gone, a NIC at a lower speed, a new switch port', () => {
    const before = report();
    const after = { ...report(), disks: [before.disks[0]!], nics: before.nics.map((n, i) => (i === 1 ? { ...n, speedMbps: 100, lldp: { ...n.lldp, port: 'tap9' } } : n)) };
    expect(diffFacts(before, after)).toEqual([
      'disk gone: vdb (2.0 GiB, serial DISK-B)',
      'nic eth1: speed 1000 → 100 Mb/s (lower)',
      'nic eth1: switch lab-switch port tap1 vlan 100 → lab-switch port tap9 vlan 100',
    ]);
    expect(diffFacts(before, before)).toEqual([]);
  });
});

describe('adoption with a BMC found', () => {
  const BMC = '\ndiscovery:\n  addresses: { start: 10.0.0.150, end: 10.0.0.152 }\n  bmc: { type: ipmi, user: ADMIN, password: secret:bmc-lab }\n';
  const withSecret = async (site: string) => {
    const src = (await bundled()).map((s) => (s.name === 'rolecast.yaml' ? { ...s, text: s.text + site } : s.name === 'secrets.yaml' ? { ...s, text: `${s.text}bmc-lab: lab-password\n` } : s));
    return { src, inv: buildInventory(src, BUNDLED_PROFILES) };
  };

  it('with discovery.bmc credentials the line gets a valid bmc: (address found + the site\'s user and secret reference)', async () => {
    const { src, inv } = await withSecret(BMC);
    const rec = ingest({ mac: '52:54:00:aa:00:01', facts: { ...report(), bmc: { address: '10.0.0.231' } }, from: '10.0.0.200', now: 'T' }, [], inv).record;
    const a = planAdoption(rec, { host: 'w200', role: 'test' }, inv, () => false);
    const line = machineLine(a, '  ', inv.discovery.bmc ? { bmc: inv.discovery.bmc } : {});
    expect(line).toContain('bmc: { type: ipmi, address: 10.0.0.231, user: "ADMIN", password: secret:bmc-lab }');
    const machines = src.find((s) => s.name === 'machines.yaml')!;
    const after = buildInventory(src.map((s) => (s === machines ? { ...s, text: appendMachine(s.text, () => line) } : s)), BUNDLED_PROFILES);
    expect(after.byHost.get('w200')?.bmc).toMatchObject({ type: 'ipmi', host: '10.0.0.231', user: 'ADMIN', passwordSecret: 'bmc-lab' });
    // Without credentials the address stays in the inbox entry only.
    expect(machineLine(a, '  ', {})).not.toContain('bmc:');
  });

  it('discovery.bmc must name a defined secret, by reference only', async () => {
    await expect(inventoryWith(BMC)).rejects.toThrow(/discovery\.bmc\.password: secret "bmc-lab" is not defined in secrets\.yaml/);
    await expect(withSecret(BMC.replace('secret:bmc-lab', 'hunter2'))).rejects.toThrow(/discovery\.bmc\.password: must be secret:NAME/);
  });
});
