import { describe, expect, it } from 'vitest';
import { ingest, identityOf, reconcile, sameBox, findRecord } from '../../../src/discovery/inbox.js';
import type { DiscoveredRecord } from '../../../src/state/types.js';
import { inventoryWith, report } from './fixture.js';

const T0 = '2026-12-02T04:00:00.000Z';
const T1 = '2026-12-02T04:05:00.000Z';

describe('inbox de-duplication', () => {
  it('a new box is one waiting entry under the MAC it reported from, with all its NIC MACs', async () => {
    const inv = await inventoryWith();
    const { record, created } = ingest({ mac: '52:54:00:aa:00:01', facts: report(), from: '10.0.0.200', now: T0 }, [], inv);
    expect(created).toBe(true);
    expect(record).toMatchObject({ mac: '52:54:00:aa:00:01', macs: ['52:54:00:aa:00:01', '52:54:00:aa:00:02'], state: 'waiting', firstSeen: T0, lastSeen: T0, address: '10.0.0.200', via: '52:54:00:aa:00:01' });
    expect(record.host).toBeUndefined();
  });

  it('the same box booted on its other NIC updates the same entry (by UUID)', async () => {
    const inv = await inventoryWith();
    const first = ingest({ mac: '52:54:00:aa:00:01', facts: report(), from: '10.0.0.200', now: T0 }, [], inv).record;
    const again = ingest({ mac: '52:54:00:aa:00:02', facts: report(), from: '10.0.0.201', now: T1 }, [first], inv);
    expect(again.created).toBe(false);
    expect(again.record).toMatchObject({ mac: '52:54:00:aa:00:01', firstSeen: T0, lastSeen: T1, via: '52:54:00:aa:00:02', address: '10.0.0.201', state: 'waiting' });
    expect(again.record.previous).toBeUndefined(); // same facts: nothing changed
  });

  it('matches by serial when the UUID is a placeholder; placeholders alone never merge two boxes', async () => {
    const inv = await inventoryWith();
    const a = ingest({ mac: '52:54:00:aa:00:01', facts: report({ uuid: '03000200-0400-0500-0006-000700080009', macs: ['52:54:00:aa:00:01'] }), from: '10.0.0.200', now: T0 }, [], inv).record;
    const b = ingest({ mac: '52:54:00:aa:00:09', facts: report({ uuid: '03000200-0400-0500-0006-000700080009', macs: ['52:54:00:aa:00:09'] }), from: '10.0.0.202', now: T1 }, [a], inv);
    expect(b.created).toBe(false); // same serial RC-0001, placeholder UUID ignored
    const c = ingest({ mac: '52:54:00:aa:00:0a', facts: report({ serial: 'To Be Filled By O.E.M.', uuid: '03000200-0400-0500-0006-000700080009', macs: ['52:54:00:aa:00:0a'] }), from: '10.0.0.203', now: T1 }, [{ ...a, facts: report({ serial: 'To Be Filled By O.E.M.', uuid: '03000200-0400-0500-0006-000700080009' }) as never }], inv);
    expect(c.created).toBe(true);
  });

  it('two real UUIDs decide even when the serials are equal (cloned SMBIOS serials stay two boxes)', () => {
    expect(sameBox({ uuid: 'a', serial: 'S' }, { uuid: 'b', serial: 'S' })).toBe(false);
    expect(sameBox({ serial: 'S', vendor: 'V' }, { serial: 'S', vendor: 'W' })).toBe(false);
    expect(identityOf(report({ serial: 'None' }))).not.toHaveProperty('serial');
  });

  it('a known machine whose NIC was swapped is that machine with a new MAC (UUID in machines.yaml)', async () => {
    const inv = await inventoryWith('', '  - { host: edge7, mac: [52:54:00:00:07:01], role: test, ip: 10.0.0.77, uuid: 4c4c4544-0001-4a10-8000-b2c04f000001 }\n');
    const { record } = ingest({ mac: '52:54:00:aa:00:01', facts: report(), from: '10.0.0.200', now: T0 }, [], inv);
    expect(record).toMatchObject({ state: 'known-machine-new-nic', host: 'edge7' });
  });

  it('a known machine (by an earlier adoption) whose NIC was swapped, found by serial', async () => {
    const inv = await inventoryWith('', '  - { host: edge7, mac: [52:54:00:00:07:01], role: test, ip: 10.0.0.77 }\n');
    const old: DiscoveredRecord = { mac: '52:54:00:00:07:01', macs: ['52:54:00:00:07:01'], firstSeen: T0, lastSeen: T0, state: 'adopted', host: 'edge7', facts: report({ uuid: '00000000-0000-0000-0000-000000000000', macs: ['52:54:00:00:07:01'] }) as never };
    const { record, created } = ingest({ mac: '52:54:00:aa:00:05', facts: report({ uuid: '00000000-0000-0000-0000-000000000000', macs: ['52:54:00:aa:00:05'] }), from: '10.0.0.205', now: T1 }, [old], inv);
    // One entry per box: edge7's own entry now says "new MAC", and names the NIC it came from.
    expect(created).toBe(false);
    expect(record).toMatchObject({ mac: '52:54:00:00:07:01', via: '52:54:00:aa:00:05', state: 'known-machine-new-nic', host: 'edge7' });
    expect(record.macs).toEqual(['52:54:00:00:07:01', '52:54:00:aa:00:05']);
  });

  it('commissioning a known machine updates its entry and keeps the previous facts', async () => {
    const inv = await inventoryWith('', '  - { host: edge7, mac: [52:54:00:aa:00:01, 52:54:00:aa:00:02], role: test, ip: 10.0.0.77 }\n');
    const first = ingest({ mac: '52:54:00:aa:00:01', facts: report(), from: '10.0.0.77', now: T0 }, [], inv).record;
    expect(first).toMatchObject({ state: 'adopted', host: 'edge7' });
    const smaller = report({ disks: [{ name: 'vda', bytes: 1 << 30, serial: 'DISK-A', rotational: true }] });
    const next = ingest({ mac: '52:54:00:aa:00:01', facts: smaller, from: '10.0.0.77', now: T1 }, [first], inv).record;
    expect(next.previous).toEqual({ at: T0, facts: first.facts });
    expect(next.facts).toEqual(smaller);
  });

  it('reconcile: a waiting entry whose MAC is now in machines.yaml shows as adopted; find by MAC, serial, UUID, host', async () => {
    const inv = await inventoryWith('', '  - { host: w200, mac: [52:54:00:aa:00:02], role: test, ip: 10.0.0.150 }\n');
    const rec = ingest({ mac: '52:54:00:aa:00:01', facts: report(), from: '10.0.0.200', now: T0 }, [], await inventoryWith()).record;
    const r = reconcile(rec, inv);
    expect(r).toMatchObject({ state: 'adopted', host: 'w200' });
    expect(findRecord([r], 'x', '52:54:00:aa:00:02')).toHaveLength(1);
    expect(findRecord([r], 'rc-0001', undefined)).toHaveLength(1);
    expect(findRecord([r], '4C4C4544-0001-4A10-8000-B2C04F000001', undefined)).toHaveLength(1);
    expect(findRecord([r], 'w200', undefined)).toHaveLength(1);
    expect(findRecord([r], 'nothing', undefined)).toHaveLength(0);
  });
});
