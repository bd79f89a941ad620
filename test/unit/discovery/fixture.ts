/** The bundled profiles as sources (editable in memory) and a commissioning report like a two-NIC VM's. */
import { readSources, type SourceFile } from '../../../src/inventory/load.js';
import { buildInventory } from '../../../src/inventory/index.js';
import type { Inventory } from '../../../src/inventory/types.js';
import type { HardwareFacts } from '../../../src/discovery/report.js';
import { resolve } from 'node:path';

/** The test-owned copy of the example profiles (test/fixtures/profiles). */
const BUNDLED_PROFILES = resolve(import.meta.dirname, '../../fixtures/profiles');

export async function bundled(): Promise<SourceFile[]> {
  return readSources(BUNDLED_PROFILES);
}

/** The bundled inventory with `discoveryYaml` appended to rolecast.yaml and `machineLines` to machines.yaml. */
export async function inventoryWith(discoveryYaml = '', machineLines = ''): Promise<Inventory> {
  const src = (await bundled()).map((s) => s.name === 'rolecast.yaml' ? { ...s, text: s.text + discoveryYaml } : s.name === 'machines.yaml' ? { ...s, text: s.text + machineLines } : s);
  return buildInventory(src, BUNDLED_PROFILES);
}

export function report(over: Partial<HardwareFacts> & { serial?: string; uuid?: string; macs?: string[] } = {}): HardwareFacts {
  const macs = over.macs ?? ['52:54:00:aa:00:01', '52:54:00:aa:00:02'];
  return {
    system: { vendor: 'QEMU', product: 'Standard PC (i440FX + PIIX, 1996)', serial: over.serial ?? 'RC-0001', uuid: over.uuid ?? '4c4c4544-0001-4a10-8000-b2c04f000001' },
    cpu: { model: 'QEMU Virtual CPU version 2.5+', sockets: 1, cores: 1, threads: 1 },
    memoryMiB: 512,
    disks: over.disks ?? [{ name: 'vda', bytes: 1 << 30, serial: 'DISK-A', rotational: true }, { name: 'vdb', bytes: 2 * 2 ** 30, serial: 'DISK-B', rotational: true }],
    nics: over.nics ?? macs.map((mac, i) => ({ name: `eth${i}`, mac, driver: 'virtio_net', speedMbps: 1000, link: true, lldp: { chassis: '02:00:00:00:00:01', port: `tap${i}`, system: 'lab-switch', vlan: 100 } })),
  };
}
