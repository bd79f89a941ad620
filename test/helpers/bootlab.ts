/**
 * The lab the initramfs tests boot in without rolecast: one namespace with bridge br0 at `server`/24 and
 * tap0 for the VM, dnsmasq handing out addresses (and any reservations), and the mini HTTP server
 * (test/e2e/fixtures/mini-server.ts) serving `dir` and recording requests and phone-home to `eventsFile`.
 */
import { join, resolve } from 'node:path';
import { Lab, waitFor } from './netns.js';

const ROOT = resolve(import.meta.dirname, '../..');

export interface MiniBootLabOptions {
  server: string;
  /** Directory of <mac>.tar files the mini server serves as /rootfs/<mac>.tar. */
  dir: string;
  eventsFile: string;
  /** How many rootfs requests the mini server fails with 503 before serving (the retry path). */
  failFirst: number;
  /** MAC → IP reservations for dnsmasq. */
  reservations?: Record<string, string>;
}

/** Start the lab; returns the namespace to run QEMU in (tap0 on br0). */
export async function startMiniBootLab(lab: Lab, o: MiniBootLabOptions): Promise<string> {
  const ns = lab.ns('vm');
  lab.bridge(ns, 'br0');
  lab.addr(ns, 'br0', `${o.server}/24`);
  lab.tap(ns, 'br0', 'tap0');
  const prefix = o.server.split('.').slice(0, 3).join('.');
  lab.spawn(ns, 'dnsmasq', ['--no-daemon', '--conf-file=/dev/null', '--port=0', '--interface=br0', '--bind-interfaces',
    `--dhcp-range=${prefix}.100,${prefix}.150,255.255.255.0,10m`,
    ...Object.entries(o.reservations ?? {}).map(([mac, ip]) => `--dhcp-host=${mac},${ip}`), '--leasefile-ro', '--user=root']);
  const srv = lab.spawn(ns, 'node', ['--import', 'tsx', join(ROOT, 'test/e2e/fixtures/mini-server.ts'), o.server, '8080', o.dir, o.eventsFile, String(o.failFirst)], { cwd: ROOT });
  let out = '';
  srv.stdout?.on('data', (d: Buffer) => { out += d.toString(); });
  srv.stderr?.on('data', (d: Buffer) => { out += d.toString(); });
  await waitFor(() => out.includes('listening'), 20_000).catch(() => { throw new Error(`mini-server did not start: ${out}`); });
  return ns;
}
