/**
 * Packaging: `npm pack` installs and runs (npx rolecast --version, serve), and `npm run package:deb` builds a
 * Debian package that installs (in a private mount namespace: overlays over /etc, /usr, /var) with its user,
 * unit, conffile and man page, and whose service, started as the unit says (its user, CAP_NET_BIND_SERVICE
 * only), serves DHCP/TFTP/HTTP in a network namespace. systemd is not PID 1 on this machine: the unit is
 * checked with `systemd-analyze verify`, not started by systemctl.
 */
import { afterAll, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describeSystem, Lab, runAsync } from '../../helpers/netns.js';

const ROOT = resolve(import.meta.dirname, '../../..');

describeSystem('rolecast packages', ['dpkg-deb', 'unshare', 'setpriv', 'systemd-analyze', 'curl', 'man'], () => {
  const dir = mkdtempSync(join(tmpdir(), 'rolecast-pkg-'));
  chmodSync(dir, 0o755);
  const lab = new Lab('pkg');
  afterAll(async () => { await lab.cleanup(); rmSync(dir, { recursive: true, force: true }); });

  it('npm pack installs into an empty directory; npx rolecast --version and serve work', async () => {
    const pack = spawnSync('npm', ['pack', '--pack-destination', dir, '--silent'], { cwd: ROOT, encoding: 'utf8' });
    expect(pack.status, pack.stderr).toBe(0);
    const tgz = join(dir, readdirSync(dir).find((f) => f.endsWith('.tgz'))!);
    const list = spawnSync('tar', ['-tzf', tgz], { encoding: 'utf8' }).stdout;
    expect(list).toMatch(/^package\/dist\/cli\.js$/m);
    expect(list).toMatch(/^package\/packaging\/rolecast\.service$/m);
    expect(list).not.toMatch(/^package\/(src|test)\//m);
    const app = join(dir, 'app');
    mkdirSync(app);
    const inst = await runAsync('npm', ['install', '--prefix', app, '--omit=dev', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', tgz], 300_000);
    expect(inst.code, inst.stderr).toBe(0);
    const v = spawnSync('npx', ['--no-install', 'rolecast', '--version'], { cwd: app, encoding: 'utf8' });
    expect(v.status, v.stderr).toBe(0);
    expect(v.stdout).toMatch(/^rolecast \d+\.\d+\.\d+\n$/);
    // serve from the installed package (its bundled example profiles, named explicitly) on loopback only.
    writeFileSync(join(dir, 'rc.yaml'), `profilesDir: ${join(app, 'node_modules/rolecast/profiles')}\ndataDir: ${join(dir, 'data')}\nimagesDir: ${join(dir, 'images')}\naddress: 127.0.0.1\ndhcp:\n  mode: 'off'\ntftp:\n  enabled: false\nhttp:\n  host: 127.0.0.1\n  port: 18467\n`);
    const ns = lab.ns('n');
    const srv = lab.spawn(ns, 'npx', ['--no-install', 'rolecast', 'serve', '--config', join(dir, 'rc.yaml')], { cwd: app, env: { ...process.env, ROLECAST_LOG_FORMAT: 'json' } });
    let log = '';
    srv.stdout?.on('data', (d: Buffer) => { log += d.toString(); });
    srv.stderr?.on('data', (d: Buffer) => { log += d.toString(); });
    for (let i = 0; i < 300 && !log.includes('rolecast serving'); i++) await new Promise((r) => setTimeout(r, 100));
    expect(log).toContain('rolecast serving');
    const h = await lab.exec(ns, 'curl', ['-sS', 'http://127.0.0.1:18467/healthz']);
    expect(JSON.parse(h.stdout)).toMatchObject({ ok: true, machines: 10 });
    lab.kill(srv);
  }, 400_000);

  it('npm run package:deb builds a .deb that installs, and its service serves as the unit runs it', async () => {
    const out = join(dir, 'deb');
    const b = await runAsync('env', ['ROLECAST_PACKAGE_BUILD=0', 'bash', join(ROOT, 'scripts/package-deb.sh'), out], 500_000);
    expect(b.code, b.stderr + b.stdout).toBe(0);
    const deb = join(out, readdirSync(out).find((f) => f.endsWith('.deb'))!);
    const depends = spawnSync('dpkg-deb', ['-f', deb, 'Depends'], { encoding: 'utf8' }).stdout.trim();
    expect(depends).toMatch(/nodejs \(>= 20\)/);
    for (const dep of depends.split(/,\s*/).map((d) => d.split(' ')[0]!)) {
      expect(spawnSync('dpkg-query', ['-W', dep]).status, `dependency ${dep} is a Debian package here`).toBe(0);
    }
    const srv = lab.ns('s');
    const cli = lab.ns('c');
    lab.veth(srv, 'rc0', cli, 'rc1');
    lab.addr(srv, 'rc0', '10.0.0.1/24');
    lab.addr(cli, 'rc1', '10.0.0.101/24');
    mkdirSync(join(dir, 'ov'));
    const r = await runAsync('unshare', ['--mount', '--propagation', 'private', 'bash', join(import.meta.dirname, 'install-in-namespace.sh'), dir, deb, srv, cli], 300_000);
    const o = r.stdout;
    expect(r.code, r.stderr + o).toBe(0);
    const section = (name: string) => o.split(`== ${name}`)[1]?.split('\n== ')[0] ?? '';
    expect(section('user')).toMatch(/^\s*rolecast:x:\d+:\d+:.*:\/var\/lib\/rolecast:/);
    expect(section('version')).toMatch(/rolecast \d+\.\d+\.\d+/);
    expect(section('man')).toContain('/usr/share/man/man1/rolecast.1.gz');
    expect(section('unit')).toContain('verify ok');
    expect(section('conffile')).toContain('/etc/rolecast/rolecast.yaml');
    expect(section('start')).toContain('rolecast net_bind_service /usr/bin/rolecast serve --config /etc/rolecast/rolecast.yaml');
    const st = section('status');
    expect(st).toMatch(/CapEff:\s+0000000000000400/);
    expect(st).not.toMatch(/Uid:\s+0\b/);
    const health = JSON.parse(section('healthz').trim()) as { status: string; missingImages: unknown[] };
    expect(health.status).toBe('degraded'); // no images built in this namespace: said so
    expect(section('script')).toMatch(/#!ipxe/);
    expect(section('tftp')).toContain('tftp same bytes');
    expect(section('log')).toMatch(/"dhcp":67/);
  }, 600_000);
});
