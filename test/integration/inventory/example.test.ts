/**
 * The shipped example (profiles/) tested as the example: it is what `bash scripts/setup.sh serve` and
 * `npm run demo` run. Every other test uses its own fixtures (test/fixtures/profiles, a copy that
 * tests own, or profiles written by test/helpers/profiles.ts), so editing the example breaks nothing
 * but this file — and this file says whether the example still works.
 */
import { describe, expect, it } from 'vitest';
import { resolve } from 'node:path';
import { loadInventory, resolveMachine } from '../../../src/inventory/index.js';
import { planBoot } from '../../../src/boot/plan.js';
import { machineContent } from '../../../src/boot/content.js';
import { renderBootConfig } from '../../../src/render/index.js';

const EXAMPLE = resolve(import.meta.dirname, '../../../profiles');
const ctx = { baseUrl: 'http://10.0.0.1:8080', server: '10.0.0.1' };

describe('the shipped example profiles', () => {
  it('validate, and every machine gets a boot script and its files from the plan, on BIOS and UEFI', async () => {
    const inv = await loadInventory(EXAMPLE);
    expect(inv.machines.length).toBeGreaterThan(0);
    for (const m of inv.machines) {
      for (const arch of [0, 7]) {
        const plan = planBoot({ mac: m.macs[0]!, protocol: 'http', arch, ipxe: true, pxe: true, request: 'script' }, inv, ctx);
        expect(plan.action, `${m.host}: ${plan.action === 'ignore' ? plan.reason : ''}`).toBe('boot');
        if (plan.action !== 'boot') continue;
        expect(renderBootConfig('ipxe', plan, inv, ctx)).toMatch(/^#!ipxe\n/);
        const content = machineContent(plan, inv, ctx);
        expect(content.files.find((f) => f.path === '/etc/hostname')?.content).toBe(`${m.host}\n`);
        expect(resolveMachine(inv, m).role.name).toBe(plan.role.name);
      }
    }
  });

  it('boots an unknown machine the way its README says (the unknown-machine policy has a target that is a role)', async () => {
    const inv = await loadInventory(EXAMPLE);
    const plan = planBoot({ mac: '52:54:00:fe:fe:01', protocol: 'http', arch: 0, ipxe: true, pxe: true, request: 'rootfs' }, inv, ctx);
    if (inv.site.unknown.policy === 'ignore') expect(plan.action).toBe('ignore');
    else expect(plan.action).toBe('boot');
  });
});
