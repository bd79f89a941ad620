/**
 * `rolecast serve` as an operator runs it, inside a lab: the server namespace holds 10.0.0.1 on a veth,
 * the client namespace 10.0.0.101 (w101's reserved address). Real clients fetch over the veth:
 * curl and tftp-hpa over TFTP on port 69, curl over HTTP.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { readFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { describeSystem, Lab, waitFor } from '../../helpers/netns.js';
import { placeholderImages } from '../../helpers/images.js';

const ROOT = resolve(import.meta.dirname, '../../..');

describeSystem('rolecast serve in a network namespace', ['curl', 'tftp'], () => {
  const lab = new Lab('serve');
  let srv: string;
  let cli: string;
  let proc: ChildProcess;
  let log = '';
  const out = mkdtempSync(join(tmpdir(), 'rolecast-serve-'));

  beforeAll(async () => {
    await placeholderImages(join(ROOT, 'test/fixtures/profiles'), join(out, 'images'));
    srv = lab.ns('s');
    cli = lab.ns('c');
    lab.veth(srv, 'rc0', cli, 'rc1');
    lab.addr(srv, 'rc0', '10.0.0.1/24');
    lab.addr(cli, 'rc1', '10.0.0.101/24');
    proc = lab.spawn(srv, process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli.ts'), 'serve', '--profiles', join(ROOT, 'test/fixtures/profiles'), '--images', join(out, 'images'), '--address', '10.0.0.1', '--dhcp-mode', 'off', '--data', join(out, 'data')], { cwd: ROOT });
    proc.stdout?.on('data', (d: Buffer) => { log += d.toString(); });
    proc.stderr?.on('data', (d: Buffer) => { log += d.toString(); });
    await waitFor(() => log.includes('rolecast serving'), 30_000);
  }, 60_000);

  afterAll(async () => { await lab.cleanup(); });

  it('serves loaders over TFTP port 69 byte-identical (curl, tftp-hpa)', async () => {
    const r = await lab.exec(cli, 'curl', ['-sS', '--tftp-blksize', '1468', '-o', join(out, 'undionly.kpxe'), 'tftp://10.0.0.1/undionly.kpxe']);
    expect(r.code, r.stderr + log).toBe(0);
    expect(readFileSync(join(out, 'undionly.kpxe')).equals(readFileSync('/usr/lib/ipxe/undionly.kpxe'))).toBe(true);
    const t = await lab.exec(cli, 'tftp', ['-m', 'binary', '10.0.0.1', '-c', 'get', 'ipxe.efi', join(out, 'ipxe.efi')]);
    expect(t.code, t.stderr).toBe(0);
    expect(readFileSync(join(out, 'ipxe.efi')).equals(readFileSync('/usr/lib/ipxe/ipxe.efi'))).toBe(true);
  });

  it('renders pxelinux.cfg/01-<mac> over TFTP and the iPXE script over HTTP', async () => {
    const p = await lab.exec(cli, 'curl', ['-sS', 'tftp://10.0.0.1/pxelinux.cfg/01-52-54-00-00-02-01']);
    expect(p.code, p.stderr).toBe(0);
    expect(p.stdout).toMatch(/APPEND .*rolecast\.host=w101 rolecast\.role=web/);
    const h = await lab.exec(cli, 'curl', ['-sS', '-f', 'http://10.0.0.1:8080/boot/52:54:00:00:02:01.ipxe']);
    expect(h.code, h.stderr).toBe(0);
    expect(h.stdout).toMatch(/^#!ipxe/);
    expect(h.stdout).toContain('rolecast.url=http://10.0.0.1:8080');
    const u = await lab.exec(cli, 'curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', 'http://10.0.0.1:8080/boot/52:54:00:ff:ff:ff.ipxe']);
    expect(u.stdout).toBe('200'); // the bundled policy boots unknown machines into rescue
  });

  it('logs the TFTP boot event with the MAC of the reserved address', () => {
    expect(log).toMatch(/"event":"tftp-loader","mac":"52:54:00:00:02:01"/);
  });
});
