/** The machine `bmc:` field: parsed values, and every mistake as file:line:col with its path. */
import { describe, expect, it } from 'vitest';
import { readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseSources, type SourceFile } from '../../../src/inventory/load.js';
import { ProfileError, formatIssue } from '../../../src/errors.js';
import { parseBmcAddress } from '../../../src/inventory/parse-bmc.js';
import { renderMachineFiles } from '../../../src/render/index.js';
import { buildInventory, resolveMachine } from '../../../src/inventory/index.js';

const PROFILES = resolve(import.meta.dirname, '../../fixtures/profiles');
const W106 = /^(\s*- \{ host: w106,.*)( \})$/m;

/** Bundled profiles with `bmc` added to w106 and a secret bmc_w106 = "pa55-w106". */
function sources(bmc: string, secrets = 'bmc_w106: pa55-w106\n'): SourceFile[] {
  const names = ['rolecast.yaml', 'machines.yaml', 'secrets.yaml', ...readdirSync(join(PROFILES, 'roles')).map((f) => `roles/${f}`)];
  return names.map((name) => {
    let text = readFileSync(join(PROFILES, name), 'utf8');
    if (name === 'machines.yaml') text = text.replace(W106, `$1, bmc: ${bmc}$2`);
    if (name === 'secrets.yaml') text += secrets;
    return { name, text };
  });
}

function errors(bmc: string, secrets?: string): string[] {
  try {
    parseSources(sources(bmc, secrets));
    return [];
  } catch (err) {
    if (err instanceof ProfileError) return err.issues.map(formatIssue);
    throw err;
  }
}

const line = readFileSync(join(PROFILES, 'machines.yaml'), 'utf8').split('\n').findIndex((l) => W106.test(l)) + 1;
const col = (bmc: string, part: string) => readFileSync(join(PROFILES, 'machines.yaml'), 'utf8').split('\n')[line - 1]!.replace(/ \}$/, `, bmc: ${bmc} }`).indexOf(part) + 1;

describe('machines.yaml bmc', () => {
  it('parses ipmi and redfish BMCs; the password stays a secret reference', () => {
    const ipmi = buildInventory(sources('{ type: ipmi, address: 10.0.0.211, user: admin, password: secret:bmc_w106 }'), PROFILES);
    expect(ipmi.byHost.get('w106')!.bmc).toEqual({ type: 'ipmi', host: '10.0.0.211', user: 'admin', passwordSecret: 'bmc_w106', scheme: 'https', tlsVerify: true });
    const rf = buildInventory(sources('{ type: redfish, address: "[fd00::5]:8443", user: root, password: secret:bmc_w106, scheme: http, tls_verify: false }'), PROFILES);
    expect(rf.byHost.get('w106')!.bmc).toEqual({ type: 'redfish', host: 'fd00::5', port: 8443, user: 'root', passwordSecret: 'bmc_w106', scheme: 'http', tlsVerify: false });
  });

  it('the password reaches no rendered file and no JSON of the machine', () => {
    const inv = buildInventory(sources('{ type: ipmi, address: 10.0.0.211, user: admin, password: secret:bmc_w106 }'), PROFILES);
    const m = inv.byHost.get('w106')!;
    const files = renderMachineFiles(resolveMachine(inv, m), inv, { baseUrl: 'http://10.0.0.1:8080', server: '10.0.0.1' });
    for (const f of files) expect(f.content).not.toContain('pa55-w106');
    expect(JSON.stringify(m)).not.toContain('pa55-w106');
  });

  const cases: Array<[string, string, string | undefined, string[]]> = [
    ['unknown type', '{ type: ilo, address: 10.0.0.211, user: admin, password: secret:bmc_w106 }', undefined,
      [`machines.yaml:${line}:${col('{ type: ilo', 'ilo')}: machines[9].bmc.type: "ilo" is not one of: ipmi, redfish`]],
    ['bad address', '{ type: ipmi, address: 10.0.0.300, user: admin, password: secret:bmc_w106 }', undefined,
      [`machines.yaml:${line}:${col('{ type: ipmi, address: 10.0.0.300', '10.0.0.300')}: machines[9].bmc.address: "10.0.0.300" is not a BMC address (want HOST or HOST:PORT, like 10.0.0.211 or bmc-w101.example:8443)`]],
    ['port out of range', '{ type: ipmi, address: "bmc1:70000", user: admin, password: secret:bmc_w106 }', undefined,
      [`machines.yaml:${line}:${col('{ type: ipmi, address: "bmc1:70000"', '"bmc1')}: machines[9].bmc.address: "bmc1:70000" is not a BMC address (want HOST or HOST:PORT, like 10.0.0.211 or bmc-w101.example:8443)`]],
    ['unknown secret', '{ type: ipmi, address: 10.0.0.211, user: admin, password: secret:nope }', undefined,
      [`machines.yaml:${line}:${col('{ type: ipmi, address: 10.0.0.211, user: admin, password: secret:nope', 'secret:nope')}: machines[9].bmc.password: secret "nope" is not defined in secrets.yaml`]],
    ['a literal password is refused and not repeated', '{ type: ipmi, address: 10.0.0.211, user: admin, password: hunter2 }', undefined,
      [`machines.yaml:${line}:${col('{ type: ipmi, address: 10.0.0.211, user: admin, password: hunter2', 'hunter2')}: machines[9].bmc.password: must be secret:NAME, naming a secret in secrets.yaml (a password is never written in machines.yaml)`]],
    ['missing user', '{ type: ipmi, address: 10.0.0.211, password: secret:bmc_w106 }', undefined,
      [`machines.yaml:${line}:${col('{ type: ipmi, address: 10.0.0.211, password', '{ type')}: machines[9].bmc: missing required key "user"`]],
    ['redfish-only keys on ipmi', '{ type: ipmi, address: 10.0.0.211, user: a, password: secret:bmc_w106, scheme: http }', undefined,
      [`machines.yaml:${line}:${col('{ type: ipmi, address: 10.0.0.211, user: a, password: secret:bmc_w106, scheme: http', 'http }')}: machines[9].bmc.scheme: only for type redfish (IPMI speaks RMCP+ over UDP)`]],
    ['typo in a key', '{ type: ipmi, adress: 10.0.0.211, user: a, password: secret:bmc_w106 }', undefined,
      [`machines.yaml:${line}:${col('{ type: ipmi, adress', '{ type')}: machines[9].bmc: missing required key "address"`,
        `machines.yaml:${line}:${col('{ type: ipmi, adress', 'adress')}: machines[9].bmc.adress: unknown key "adress" (allowed: type, address, user, password, scheme, tls_verify)`]],
  ];
  for (const [name, bmc, secrets, want] of cases) it(name, () => expect(errors(bmc, secrets)).toEqual(want));

  it('addresses: host names, IPv4, [IPv6], ports', () => {
    expect(parseBmcAddress('10.0.0.211')).toEqual({ host: '10.0.0.211' });
    expect(parseBmcAddress('10.0.0.211:623')).toEqual({ host: '10.0.0.211', port: 623 });
    expect(parseBmcAddress('bmc-w101.example')).toEqual({ host: 'bmc-w101.example' });
    expect(parseBmcAddress('[fd00::1]:443')).toEqual({ host: 'fd00::1', port: 443 });
    for (const bad of ['', '10.0.0.256', 'a b', 'host:0', 'host:', '[zz]:1', 'fd00::1', '-bad.example', 'http://x']) expect(parseBmcAddress(bad), bad).toBeUndefined();
  });
});
