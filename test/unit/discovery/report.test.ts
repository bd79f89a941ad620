import { describe, expect, it } from 'vitest';
import { parseReport, parseReportText, ReportError } from '../../../src/discovery/report.js';

const good = {
  version: 1,
  system: { vendor: 'QEMU', product: 'Standard PC', serial: 'RC-0001', uuid: '4C4C4544-0001-4A10-8000-B2C04F000001' },
  cpu: { model: 'QEMU Virtual CPU', sockets: 1, cores: 2, threads: 2 },
  memory_mib: 512,
  disks: [{ name: 'vda', bytes: 1073741824, model: null, serial: 'DISK-A', rotational: true }],
  nics: [{ name: 'eth0', mac: '52:54:00:AA:00:01', driver: 'virtio_net', speed_mbps: null, link: true, lldp: { chassis: '02:00:00:00:00:01', port: 'tap0', system: 'lab-switch', vlan: 100 } }],
  bmc: { address: '0.0.0.0' },
};

function refusal(body: unknown): { field: string; message: string } {
  try {
    parseReport(body);
  } catch (err) {
    if (err instanceof ReportError) return { field: err.field, message: err.message };
    throw err;
  }
  throw new Error('accepted');
}

describe('commissioning report', () => {
  it('keeps every fact, normalises MAC and UUID, turns null and an unconfigured BMC (0.0.0.0) into absence', () => {
    const f = parseReport(good);
    expect(f.system).toEqual({ vendor: 'QEMU', product: 'Standard PC', serial: 'RC-0001', uuid: '4c4c4544-0001-4a10-8000-b2c04f000001' });
    expect(f.memoryMiB).toBe(512);
    expect(f.disks).toEqual([{ name: 'vda', bytes: 1073741824, serial: 'DISK-A', rotational: true }]);
    expect(f.nics).toEqual([{ name: 'eth0', mac: '52:54:00:aa:00:01', driver: 'virtio_net', link: true, lldp: { chassis: '02:00:00:00:00:01', port: 'tap0', system: 'lab-switch', vlan: 100 } }]);
    expect(f.bmc).toBeUndefined();
  });

  it('a box with nothing but a NIC still reports', () => {
    expect(parseReport({ nics: [{ name: 'eth0', mac: '52:54:00:aa:00:01' }] })).toEqual({ system: {}, cpu: {}, disks: [], nics: [{ name: 'eth0', mac: '52:54:00:aa:00:01' }] });
  });

  it.each([
    [[], '(body)', 'must be a JSON object'],
    [{ ...good, color: 'red' }, 'color', 'unknown field'],
    [{ ...good, version: 2 }, 'version', 'must be 1'],
    [{ ...good, memory_mib: -1 }, 'memory_mib', 'must be an integer'],
    [{ ...good, memory_mib: '512' }, 'memory_mib', 'must be an integer'],
    [{ ...good, system: { ...good.system, uuid: 'nope' } }, 'system.uuid', 'is not a UUID'],
    [{ ...good, system: { serial: 'a\nb' } }, 'system.serial', 'control characters'],
    [{ ...good, system: { serial: 'x'.repeat(300) } }, 'system.serial', 'longer than 256'],
    [{ ...good, disks: [{ name: '../etc' }] }, 'disks[0].name', 'device name'],
    [{ ...good, disks: [good.disks[0], { name: 'vdb', rotational: 'yes' }] }, 'disks[1].rotational', 'true or false'],
    [{ ...good, nics: [{ name: 'eth0', mac: 'zz' }] }, 'nics[0].mac', 'is not a MAC address'],
    [{ ...good, nics: [{ name: 'eth0' }] }, 'nics[0].mac', 'missing'],
    [{ ...good, nics: [good.nics[0], { ...good.nics[0], name: 'eth1' }] }, 'nics[1].mac', 'listed twice'],
    [{ ...good, nics: [{ ...good.nics[0], lldp: { vlan: 5000 } }] }, 'nics[0].lldp.vlan', 'integer 0–4094'],
    [{ ...good, nics: 'eth0' }, 'nics', 'must be a list'],
    [{ ...good, disks: Array.from({ length: 257 }, (_, i) => ({ name: `d${i}` })) }, 'disks', 'more than 256'],
    [{ ...good, bmc: { address: '10.0.0.999' } }, 'bmc.address', 'not an IPv4 address'],
  ])('refuses %j naming the field', (body, field, message) => {
    const r = refusal(body);
    expect(r.field).toBe(field);
    expect(r.message).toContain(message);
    expect(r.message.startsWith(`${field}: `)).toBe(true);
  });

  it('a JSON syntax error is refused as (body) with the parser reason', () => {
    expect(() => parseReportText('{"nics": [}')).toThrowError(/^\(body\): not JSON: Unexpected token/);
  });
});
