/** planBoot's rootfs version (issue 18): staged on this machine, else the image's current; nothing without a view. */
import { describe, expect, it } from 'vitest';
import { planBoot, type BootTargetPlan } from '../../../src/boot/plan.js';
import { inventory, machine, role } from './fixture.js';

const A = '52:54:00:00:02:01';
const B = '52:54:00:00:02:02';
const ONCE = '52:54:00:00:02:03';
const inv = inventory(
  [machine('w101', A, 'web'), machine('w102', B, 'web'), machine('w103', ONCE, 'web', { bootOnce: 'rescue' })],
  [role('web'), role('rescue', { kind: 'maintenance' })],
);
const images = { current: { 'web-base': 'web-aaaaaaaaaaaa.tar', 'rescue-base': 'rescue-cccccccccccc.tar' }, pins: { 'web-base': { w101: 'web-bbbbbbbbbbbb.tar', w103: 'web-bbbbbbbbbbbb.tar' } } };
const plan = (mac: string, withView = true) => planBoot({ mac, protocol: 'http', request: 'rootfs', ipxe: true, pxe: true }, inv, { baseUrl: 'http://10.0.0.1:8080', ...(withView ? { images } : {}) }) as BootTargetPlan;

describe('planBoot: which version of the base image', () => {
  it.each([
    ['staged on this machine', A, 'web-base', 'web-bbbbbbbbbbbb.tar'],
    ['another machine of the role: the current', B, 'web-base', 'web-aaaaaaaaaaaa.tar'],
    ['a boot-once target: its own image, the pin on the role image does not apply', ONCE, 'rescue-base', 'rescue-cccccccccccc.tar'],
  ])('%s', (_why, mac, rootfs, version) => {
    expect(plan(mac)).toMatchObject({ rootfs, rootfsVersion: version });
  });

  it('without an image view (DHCP, TFTP) the plan names the image only', () => {
    expect(plan(A, false).rootfs).toBe('web-base');
    expect(plan(A, false).rootfsVersion).toBeUndefined();
  });
});
