import { describe, expect, it } from 'vitest';
import { planBoot } from '../../../src/boot/plan.js';
import { buildInventory } from '../../../src/inventory/index.js';
import { renderBootConfig } from '../../../src/render/index.js';
import { BUNDLED_PROFILES } from '../../../src/commands/common.js';
import { ProfileError } from '../../../src/errors.js';
import { bundled } from './fixture.js';

const ctx = { baseUrl: 'http://10.0.0.1:8080', server: '10.0.0.1' };

async function withPolicy(unknown: string) {
  const src = (await bundled()).map((s) => (s.name === 'rolecast.yaml' ? { ...s, text: s.text.replace(/ {2}unknown:\n {4}policy: boot[^\n]*\n {4}target: rescue\n/, unknown) } : s));
  return buildInventory(src, BUNDLED_PROFILES);
}

describe('unknown-machine policy discover', () => {
  it('boots the bundled discover role: the common initramfs with rolecast.action=discover for this MAC', async () => {
    const inv = await withPolicy('  unknown: { policy: discover }\n');
    const plan = planBoot({ mac: '52:54:00:aa:00:01', protocol: 'http', arch: 0, ipxe: true, pxe: true }, inv, ctx);
    expect(plan).toMatchObject({ action: 'boot', role: { name: 'discover' }, bootOnce: false });
    if (plan.action !== 'boot') throw new Error('ignored');
    expect(plan.host).toBeUndefined();
    const script = renderBootConfig('ipxe', plan, inv, ctx);
    expect(script).toMatch(/rolecast\.action=discover .*rolecast\.mac=52:54:00:aa:00:01 rolecast\.role=discover/);
    // Known machines are not affected.
    expect(planBoot({ mac: '52:54:00:00:02:01', protocol: 'http', arch: 0, ipxe: true, pxe: true }, inv, ctx)).toMatchObject({ host: 'w101', role: { name: 'web' } });
  });

  it('a site may name another commissioning role; a missing one is a profile error', async () => {
    const inv = await withPolicy('  unknown: { policy: discover, target: rescue }\n');
    expect(planBoot({ mac: '52:54:00:aa:00:01', protocol: 'dhcp', arch: 0, ipxe: false, pxe: true }, inv, ctx)).toMatchObject({ action: 'boot', role: { name: 'rescue' } });
    await expect(withPolicy('  unknown: { policy: discover, target: nope }\n')).rejects.toThrow(ProfileError);
    await expect(withPolicy('  unknown: { policy: discover, target: nope }\n')).rejects.toThrow(/site\.unknown\.target: policy discover boots role "nope", which is not defined/);
  });
});
