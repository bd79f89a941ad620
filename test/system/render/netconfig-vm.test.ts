/**
 * Prove the rendered files with the real tools: Debian's ifupdown (+ ifenslave, vlan) brings up the
 * rendered /etc/network/interfaces of lb1 and lb2 — a bond of two NICs with a tagged VLAN — and
 * keepalived --config-test accepts their keepalived.conf on those interfaces.
 *
 * This host's kernel has no bonding or 8021q, so the check runs in a QEMU VM (TCG) with Debian's
 * kernel: our initramfs loads bonding/8021q/9p, mounts this machine's root read-only over virtio-9p
 * and runs ifup, ip and keepalived from it in a chroot. The VM has no network device at all
 * (-nic none; its two NICs are dummies), so nothing is sent anywhere.
 */
import { expect, it } from 'vitest';
import { join, resolve } from 'node:path';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { describeSystem } from '../../helpers/netns.js';
import { runQemu } from '../../helpers/qemu.js';
import { buildInitramfsImage } from '../../../src/images/initramfs.js';
import { kernelVersions } from '../../../src/images/modules.js';
import { loadInventory, resolveMachine } from '../../../src/inventory/index.js';
import { renderMachineFiles } from '../../../src/render/index.js';
import type { CpioEntry } from '../../../src/images/cpio.js';

const ROOT = resolve(import.meta.dirname, '../../..');
const ctx = { baseUrl: 'http://10.0.0.1:8080', server: '10.0.0.1' };
const HOSTS = ['lb1', 'lb2', 'db1'];

const INIT = `#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in $(cat /lib/rolecast-modules/order); do insmod /lib/rolecast-modules/$m || echo "NETTEST insmod $m failed"; done
mkdir -p /host
mount -t 9p -o trans=virtio,version=9p2000.L,ro hostroot /host || { echo "NETTEST 9p mount failed"; poweroff -f; }
for d in run tmp mnt; do mount -t tmpfs t /host/$d; done
mount --bind /proc /host/proc; mount --bind /sys /host/sys; mount --bind /dev /host/dev
cp -r /test/. /host/mnt/
for h in $(cat /test/hosts); do
  echo "NETTEST BEGIN $h"
  chroot /host /bin/sh /mnt/check.sh $h
  echo "NETTEST END $h rc=$?"
done
echo "NETTEST DONE"
poweroff -f
`;

// Runs inside the chroot (Debian userland). Each host gets fresh dummy NICs eth0/eth1.
const CHECK = `#!/bin/sh
h=$1
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
ip link add eth0 type dummy; ip link add eth1 type dummy
mkdir -p /run/network
ifup -i /mnt/$h.interfaces --state-dir /run/network -a >/tmp/ifup.log 2>&1; echo "NETTEST ifup rc=$?"; sed 's/^/NETTEST ifup: /' /tmp/ifup.log
ip -d link show | sed 's/^/NETTEST link: /'
ip -o -4 addr show | sed 's/^/NETTEST addr: /'
if [ -f /mnt/$h.keepalived.conf ]; then
  keepalived --config-test -f /mnt/$h.keepalived.conf >/tmp/ka.log 2>&1; echo "NETTEST keepalived rc=$?"; sed 's/^/NETTEST keepalived: /' /tmp/ka.log
fi
ifdown -i /mnt/$h.interfaces --state-dir /run/network -a >/dev/null 2>&1
ip link del bond0 2>/dev/null; ip link del eth0 2>/dev/null; ip link del eth1 2>/dev/null
`;

function section(log: string, host: string): string[] {
  const start = log.indexOf(`NETTEST BEGIN ${host}`);
  const end = log.indexOf(`NETTEST END ${host}`);
  return start < 0 || end < 0 ? [] : log.slice(start, end).split(/\r?\n/).filter((l) => l.startsWith('NETTEST '));
}

describeSystem('rendered network and keepalived configs on real tools (VM)', ['qemu-system-x86_64', 'keepalived', 'ifup'], () => {
  it('ifupdown brings up bond0 (active-backup, both slaves) and VLAN 100; keepalived --config-test passes', async () => {
    const [kver] = kernelVersions().filter((v) => v.includes('amd64'));
    expect(kver, 'a Debian kernel (linux-image-amd64) in /boot').toBeDefined();
    const inv = await loadInventory(join(ROOT, 'test/fixtures/profiles'));
    const files: CpioEntry[] = [
      { type: 'file', path: 'test/check.sh', mode: 0o755, data: Buffer.from(CHECK) },
      { type: 'file', path: 'test/hosts', mode: 0o644, data: Buffer.from(HOSTS.join('\n')) },
    ];
    for (const h of HOSTS) {
      for (const f of renderMachineFiles(resolveMachine(inv, inv.byHost.get(h)!), inv, ctx)) {
        if (f.path === '/etc/network/interfaces') files.push({ type: 'file', path: `test/${h}.interfaces`, mode: 0o644, data: Buffer.from(f.content) });
        if (f.path === '/etc/keepalived/keepalived.conf') files.push({ type: 'file', path: `test/${h}.keepalived.conf`, mode: 0o644, data: Buffer.from(f.content) });
      }
    }
    const img = buildInitramfsImage({ kernelVersion: kver!, modules: ['bonding', '8021q', 'dummy', '9p', '9pnet_virtio', 'virtio_pci'], init: INIT, files });
    expect(img.modules.missing).toEqual([]);
    const dir = mkdtempSync(join(tmpdir(), 'rolecast-netvm-'));
    writeFileSync(join(dir, 'initrd.img'), img.image);
    const vm = await runQemu('netconfig', [
      '-kernel', `/boot/vmlinuz-${kver}`, '-initrd', join(dir, 'initrd.img'), '-append', 'console=ttyS0 panic=-1 quiet',
      '-nic', 'none', '-fsdev', 'local,id=h,path=/,security_model=none,readonly=on', '-device', 'virtio-9p-pci,fsdev=h,mount_tag=hostroot',
    ], { timeoutMs: 300_000, until: /NETTEST DONE/ });
    const evidence = `serial log: ${vm.logPath}`;
    expect(vm.log, evidence).toContain('NETTEST DONE');

    for (const h of HOSTS) {
      const lines = section(vm.log, h);
      const m = inv.byHost.get(h)!;
      expect(lines, `${h}: ${evidence}`).toContain('NETTEST ifup rc=0');
      const link = lines.filter((l) => l.startsWith('NETTEST link: ')).join('\n');
      expect(link).toMatch(/bond0: .*MASTER.*UP/);
      // An MII-monitored bond (dummy slaves: carrier always up) has an active slave. An ARP-monitored one
      // (db) has none once its arp_ip_target stays silent for arp_interval x arp_missed_max: nothing in
      // this VM answers 10.0.0.254, so whether it still shows one depends on how long ifup took under TCG.
      if (h.startsWith('lb')) expect(link).toMatch(/bond mode active-backup active_slave eth\d/);
      else expect(link).toMatch(/bond mode active-backup /);
      expect(link).toMatch(/eth0: .*SLAVE.* master bond0/);
      expect(link).toMatch(/eth1: .*SLAVE.* master bond0/);
      const addr = lines.filter((l) => l.startsWith('NETTEST addr: ')).join('\n');
      expect(addr).toMatch(new RegExp(`bond0\\s+inet ${m.ip.replace(/\./g, '\\.')}/24`));
      if (h.startsWith('lb')) {
        expect(link).toMatch(/bond0\.100@bond0: .*\n.*\n.*vlan protocol 802\.1Q id 100/);
        expect(addr).toMatch(new RegExp(`bond0\\.100\\s+inet ${m.addresses.wan!.replace(/\./g, '\\.')}/24`));
        expect(lines, `${h} keepalived: ${evidence}`).toContain('NETTEST keepalived rc=0');
      } else {
        // db: ARP monitoring instead of MII, towards the gateway.
        expect(link).toMatch(/bond mode active-backup .*arp_interval 1000 .*arp_ip_target 10\.0\.0\.254/);
      }
    }
  }, 360_000); // TCG: ~95 s on a quiet 2-core box, past 180 s at load 40
});
