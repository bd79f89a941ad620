/**
 * The commissioning image's LLDP listener against a real switch-side speaker: Debian's lldpd in one
 * namespace announces on its port (system name, port name, 802.1 Port VLAN ID TLV), rolecast-hw in
 * the other hears it — the same static binary the initramfs carries. Also: what the image holds.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeSystem, Lab } from '../../helpers/netns.js';
import { compileHelper } from '../../../src/images/discover-parts.js';
import { commonInitramfsImage, defaultKernelVersion, INITRAMFS_SRC } from '../../../src/images/initramfs.js';

describeSystem('discovery: LLDP listener and IPMI helper (rolecast-hw) against lldpd', ['lldpd', 'gcc', 'ip', 'cpio'], () => {
  const lab = new Lab('lldp');
  const dir = mkdtempSync(join(tmpdir(), 'rolecast-lldp-'));
  const helper = join(dir, 'rolecast-hw');
  let sw = '';
  let box = '';
  let lldpdLog = '';

  beforeAll(() => {
    const built = compileHelper(INITRAMFS_SRC);
    expect(built.warning).toBeUndefined();
    writeFileSync(helper, built.binary!, { mode: 0o755 });
    // lldpd drops privileges: its control socket must sit where its user can reach it.
    chmodSync(dir, 0o755);
    sw = lab.ns('sw');
    box = lab.ns('box');
    lab.veth(sw, 'swp7', box, 'eth0');
    lab.veth(sw, 'swp8', box, 'eth1');
    writeFileSync(join(dir, 'lldpd.conf'), [
      'configure system hostname rack3-tor', 'configure lldp tx-interval 1', 'configure lldp portidsubtype ifname',
      'configure ports swp7 lldp custom-tlv oui 00,80,c2 subtype 1 oui-info 00,64', '',
    ].join('\n'));
    const lldpd = lab.spawn(sw, 'lldpd', ['-d', '-u', join(dir, 'lldpd.sock'), '-I', 'swp7,swp8', '-O', join(dir, 'lldpd.conf')]);
    lldpd.stderr?.on('data', (d: Buffer) => { lldpdLog += d.toString(); });
    lldpd.stdout?.on('data', (d: Buffer) => { lldpdLog += d.toString(); });
  });

  afterAll(async () => {
    await lab.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  it('hears one neighbour per NIC: chassis MAC, port, system name, and the VLAN where the switch sends one', async () => {
    const r = await lab.exec(box, helper, ['lldp', '20', 'eth0', 'eth1'], { timeoutMs: 30_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout, `lldpd said:\n${lldpdLog}`).toMatch(/^eth\d /);
    const lines = Object.fromEntries(r.stdout.trim().split('\n').map((l) => [l.split(' ')[0], JSON.parse(l.slice(l.indexOf(' ') + 1)) as Record<string, unknown>]));
    expect(lines.eth0).toEqual({ chassis: expect.stringMatching(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/), port: 'swp7', system: 'rack3-tor', vlan: 100 });
    expect(lines.eth1).toEqual({ chassis: lines.eth0!.chassis, port: 'swp8', system: 'rack3-tor' });
  }, 40_000);

  it('gives up after its time bound on a NIC where nothing speaks LLDP, and says nothing for it', async () => {
    lab.veth(box, 'eth2', sw, 'quiet0');
    const t = Date.now();
    const r = await lab.exec(box, helper, ['lldp', '2', 'eth2'], { timeoutMs: 10_000 });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('');
    expect(Date.now() - t).toBeGreaterThanOrEqual(1900);
  }, 20_000);

  it('without /dev/ipmi0 the BMC query fails cleanly (no BMC fact)', () => {
    const r = spawnSync(helper, ['bmc'], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
  });

  it('the common initramfs carries the discover action, the static helper and the IPMI drivers (loaded only by discover)', async () => {
    const img = await commonInitramfsImage(defaultKernelVersion());
    const list = spawnSync('cpio', ['-it', '--quiet'], { input: gunzipSync(img.image), encoding: 'utf8', maxBuffer: 1 << 26 }).stdout.split('\n');
    expect(list).toEqual(expect.arrayContaining(['lib/rolecast/discover.sh', 'bin/rolecast-hw', 'lib/rolecast-modules/discover/order']));
    expect(list.filter((n) => n.startsWith('lib/rolecast-modules/discover/') && /ipmi_(si|devintf|msghandler)\.ko/.test(n))).toHaveLength(3);
    expect(img.warnings).toEqual([]);
    // The script parses under busybox ash.
    expect(spawnSync('busybox', ['sh', '-n', join(INITRAMFS_SRC, 'discover.sh')]).status).toBe(0);
  }, 120_000);
});
