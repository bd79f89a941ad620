/// <reference lib="dom" />
/**
 * The web UI in real Chromium against `rolecast serve` in a network namespace. Chromium runs inside
 * the server's namespace (nothing leaves it); a client namespace boots as w101 with real clients —
 * busybox udhcpc (PXE vendor class), tftp-hpa, curl — while the page shows each stage live, without a
 * reload. Then: a role change in the page edits the YAML line, a wipe needs its confirmation, a
 * refused profile edit shows its file:line:col banner, a wrong token and a read-only session are
 * refused. Screenshots go to test-artifacts/ui.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { chmodSync, cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { describeSystem, Lab, waitFor } from '../../helpers/netns.js';
import { describeBrowser, launchBrowser, login, screenshot, type Browser } from '../../helpers/browser.js';

const ROOT = resolve(import.meta.dirname, '../../..');
const W101 = '52:54:00:00:02:01';
const ADMIN = 'browser-admin-token-0123';
const READ = 'browser-read-token-4567';
const BASE = 'http://10.0.0.1:8080';
const BMC_PORT = 9443;
const BMC_PASSWORD = 'ui-bmc-pass-0123';
// Generous waits: the whole suite shares 2 cores, and a page update can lag behind under that load.
const SLOW = 15_000;

describeBrowser('web UI in Chromium', () => describeSystem('web UI against rolecast serve, a live boot in a namespace', ['busybox', 'tftp', 'curl'], () => {
  const lab = new Lab('ui');
  const dir = mkdtempSync(join(tmpdir(), 'rolecast-ui-sys-'));
  const profiles = join(dir, 'profiles');
  let srv = '';
  let cli = '';
  let proc: ChildProcess;
  let log = '';
  let b: Browser;
  let bmc: ChildProcess;
  let bmcOut = '';
  const bmcState = () => JSON.parse(bmcOut.trim().split('\n').filter((l) => l.startsWith('{')).at(-1) ?? '{}') as { power?: string; boot?: { BootSourceOverrideTarget?: string; BootSourceOverrideEnabled?: string }; resets?: string[] };

  const inClient = async (cmd: string, args: string[]) => {
    const r = await lab.exec(cli, cmd, args, { timeoutMs: 30_000 });
    expect(r.code, `${cmd} ${args.join(' ')}: ${r.stderr}\n${log.slice(-2000)}`).toBe(0);
    return r;
  };
  // The server's API paths, asked from the page (only the namespace reaches the server); retried, since
  // an evaluate can land while a hash navigation is still settling under load.
  const apiPaths = async (): Promise<string[]> => {
    for (let i = 0; ; i++) {
      try {
        return await b.page.evaluate(() => fetch('/api/openapi.json').then((r) => r.json()).then((d: { paths: Record<string, unknown> }) => Object.keys(d.paths)));
      } catch (err) {
        if (i >= 3) throw err;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  };
  const rowStage = () => b.page.locator('tr[data-host="w101"] [data-testid="stage"]').textContent();

  beforeAll(async () => {
    spawnSync(process.execPath, [join(ROOT, 'scripts/build-ui.mjs')], { stdio: 'inherit' });
    cpSync(join(ROOT, 'test/fixtures/profiles'), profiles, { recursive: true });
    // A discovery rule for the inbox test: boxes whose serial starts "UI-" become web-<n> (web), addresses from .150.
    writeFileSync(join(profiles, 'rolecast.yaml'), `${readFileSync(join(profiles, 'rolecast.yaml'), 'utf8')}
discovery:
  addresses: { start: 10.0.0.150, end: 10.0.0.159 }
  rules:
    - name: ui-rack
      match: { serial_prefix: UI- }
      host: "web-{n}"
      role: web
`);
    mkdirSync(join(dir, 'images/build/rootfs'), { recursive: true });
    writeFileSync(join(dir, 'images/build/vmlinuz'), randomBytes(64 * 1024));
    writeFileSync(join(dir, 'images/build/initrd.img'), randomBytes(32 * 1024));
    mkdirSync(join(dir, 'base/etc'), { recursive: true });
    writeFileSync(join(dir, 'base/etc/motd'), 'web\n');
    spawnSync('tar', ['-C', join(dir, 'base'), '-cf', join(dir, 'images/build/rootfs/web.tar'), '.']);
    // w102 has a BMC: the Redfish test BMC, started below inside the server namespace.
    const machines = join(profiles, 'machines.yaml');
    writeFileSync(machines, readFileSync(machines, 'utf8').replace(/(\{ host: w102,[^\n]*?) \}/, `$1, bmc: { type: redfish, address: "127.0.0.1:${BMC_PORT}", user: admin, password: secret:ui_bmc, scheme: http } }`));
    writeFileSync(join(profiles, 'secrets.yaml'), `${readFileSync(join(profiles, 'secrets.yaml'), 'utf8')}ui_bmc: ${BMC_PASSWORD}\n`);
    writeFileSync(join(dir, 'rolecast.yaml'), [
      `profilesDir: ${profiles}`, `dataDir: ${join(dir, 'data')}`, `imagesDir: ${join(dir, 'images')}`, 'address: 10.0.0.1',
      'http:', '  port: 8080', '  tokens:', `    admin: [${ADMIN}]`, `    read: [${READ}]`, '',
    ].join('\n'));
    // udhcpc hands the lease to this script: it puts the address on the interface, as a booting box would.
    writeFileSync(join(dir, 'udhcpc.sh'), '#!/bin/sh\n[ "$1" = bound ] && busybox ifconfig "$interface" "$ip" netmask "$subnet" up\nexit 0\n');
    chmodSync(join(dir, 'udhcpc.sh'), 0o755);
    srv = lab.ns('s');
    cli = lab.ns('c');
    lab.veth(srv, 'rs0', cli, 'rc0');
    lab.addr(srv, 'rs0', '10.0.0.1/24');
    spawnSync('ip', ['-n', cli, 'link', 'set', 'rc0', 'address', W101]);
    bmc = lab.spawn(srv, process.execPath, ['--import', 'tsx', join(ROOT, 'test/system/ui/fixtures/bmc.ts'), String(BMC_PORT), 'admin', BMC_PASSWORD], { cwd: ROOT });
    bmc.stdout?.on('data', (d: Buffer) => { bmcOut += d.toString(); });
    await waitFor(() => bmcOut.includes('ready'), 30_000);
    proc = lab.spawn(srv, process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli.ts'), 'serve', '--config', join(dir, 'rolecast.yaml')], { cwd: ROOT });
    proc.stdout?.on('data', (d: Buffer) => { log += d.toString(); });
    proc.stderr?.on('data', (d: Buffer) => { log += d.toString(); });
    await waitFor(() => log.includes('rolecast serving'), 30_000);
    b = await launchBrowser({ netns: srv });
  }, 120_000);

  afterAll(async () => {
    await b?.close();
    await lab.cleanup();
  });

  it('refuses a wrong token: no session cookie, the form says so', async () => {
    await login(b.page, BASE, 'not-the-token');
    await expect.poll(() => b.page.getByRole('alert').textContent(), { timeout: SLOW }).toContain('That token was refused.');
    expect(await b.context.cookies()).toEqual([]);
    const api = await b.page.evaluate(() => fetch('/api/fleet').then((r) => r.status));
    expect(api).toBe(401);
    await screenshot(b.page, 'login-refused');
  });

  it('logs in and shows the fleet', async () => {
    await login(b.page, BASE, ADMIN);
    await b.page.waitForSelector('[data-testid="fleet-count"]');
    expect(await b.page.getByTestId('fleet-count').textContent()).toBe('10 of 10 machines');
    const cookie = (await b.context.cookies()).find((c) => c.name === 'rolecast_session');
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict' });
    await expect.poll(() => b.page.getByTestId('live').textContent(), { timeout: SLOW }).toBe('● live');
  });

  it('shows every stage of a real DHCP/TFTP/HTTP boot live, without a reload', async () => {
    await b.page.evaluate(() => { (window as unknown as { sameDocument: boolean }).sameDocument = true; });
    const see = async (stage: string) => {
      await expect.poll(rowStage, { timeout: SLOW }).toBe(stage);
    };
    // PXE ROM: DHCP with the PXE vendor class and option 93 (BIOS), then the loader over TFTP.
    await inClient('busybox', ['udhcpc', '-i', 'rc0', '-f', '-q', '-n', '-t', '5', '-T', '1', '-s', join(dir, 'udhcpc.sh'), '-V', 'PXEClient:Arch:00000:UNDI:002001', '-x', '93:0000']);
    await see('dhcp-ack');
    await inClient('tftp', ['-m', 'binary', '10.0.0.1', '-c', 'get', 'undionly.kpxe', join(dir, 'undionly.kpxe')]);
    await see('tftp-loader');
    // iPXE: the script, kernel and initrd over HTTP.
    const script = await inClient('curl', ['-sSf', `${BASE}/boot/${W101}.ipxe?arch=0`]);
    await see('http-script');
    const token = /rolecast\.token=(\S+)/.exec(script.stdout)?.[1];
    expect(token, script.stdout).toBeDefined();
    await inClient('curl', ['-sSf', '-o', '/dev/null', `${BASE}/images/kernel`]);
    await see('http-kernel');
    await inClient('curl', ['-sSf', '-o', '/dev/null', `${BASE}/images/initrd`]);
    await see('http-initrd');
    // The initramfs fetches its secret bundle (from a port below 1024, with the token), phones home
    // signed with the boot key in it, fetches the rootfs, and the booted system reports.
    await inClient('curl', ['-sSf', '--local-port', '600-1023', '-H', `authorization: Bearer ${token}`, '-o', join(dir, 'bundle.tar'), `${BASE}/secrets/${W101}`]);
    const bootKey = spawnSync('tar', ['-xOf', join(dir, 'bundle.tar'), 'rolecast-boot.key'], { encoding: 'utf8' }).stdout.trim();
    const phone = (stage: string, detail: string) => {
      const body = JSON.stringify({ stage, detail });
      return inClient('curl', ['-sSf', '-o', '/dev/null', '-H', 'content-type: application/json', '-H', `x-rolecast-boot: ${token!.split('.')[0]}`,
        '-H', `x-rolecast-signature: ${createHmac('sha256', bootKey).update(body).digest('hex')}`, '-d', body, `${BASE}/api/machines/${W101}/events`]);
    };
    await phone('initramfs', 'fetching rootfs');
    await see('initramfs');
    await inClient('curl', ['-sSf', '-o', join(dir, 'w101.tar'), `${BASE}/rootfs/${W101}.tar`]);
    await see('http-rootfs');
    await phone('booted', 'switch_root done');
    await see('booted');
    expect(await b.page.evaluate(() => (window as unknown as { sameDocument?: boolean }).sameDocument)).toBe(true);
    expect(await b.page.locator('tr[data-host="w101"] td').nth(4).textContent()).toBe('bios');
    await screenshot(b.page, 'fleet-live');
    // The machine page draws this boot as the whole chain.
    await b.page.getByRole('link', { name: 'w101', exact: true }).click();
    await b.page.waitForSelector('[data-testid="timeline"]');
    const done = await b.page.locator('.boot').first().locator('.chain li.done').allTextContents();
    expect(done).toEqual(['DHCP', 'loader', 'script', 'kernel', 'initrd', 'initramfs', 'rootfs', 'booted']);
    await screenshot(b.page, 'machine-w101', true);
    await screenshot(b.page, 'machine-w101-top');
  }, 120_000);

  it('changes a role from the page: the YAML line changes', async () => {
    const line = () => readFileSync(join(profiles, 'machines.yaml'), 'utf8').split('\n').find((l) => l.includes('host: w106'));
    expect(line()).toContain('role: web');
    await b.page.goto(`${BASE}/ui/#/m/w106`);
    await b.page.getByLabel('Role', { exact: true }).selectOption('lb');
    await b.page.getByRole('button', { name: 'Change role' }).click();
    await expect.poll(async () => (await b.page.getByRole('status').filter({ hasText: 'is now lb' }).count()) || (await b.page.getByRole('alert').allTextContents()).join(' '), { timeout: SLOW }).toBe(1);
    expect(line()).toContain('role: lb');
    await expect.poll(() => b.page.getByTestId('yaml-line').textContent(), { timeout: SLOW }).toContain('role: lb');
    await screenshot(b.page, 'machine-w106-role');
  });

  it('a wipe needs the host name typed, and is refused without confirm_wipe', async () => {
    await b.page.goto(`${BASE}/ui/#/m/w101`);
    await b.page.getByLabel('Target').selectOption('wipe');
    const go = b.page.getByRole('button', { name: 'Boot once' });
    expect(await go.isDisabled()).toBe(true);
    await b.page.getByLabel('Type the host name to confirm').fill('w101');
    await go.click();
    await expect.poll(() => b.page.getByRole('alert').first().textContent(), { timeout: SLOW }).toContain('set confirm_wipe: true');
    expect(readFileSync(join(profiles, 'machines.yaml'), 'utf8')).not.toContain('boot_once');
  });

  it('shows a banner with file:line:col when a profile edit is refused', async () => {
    const file = join(profiles, 'machines.yaml');
    const good = readFileSync(file, 'utf8');
    writeFileSync(file, good.replace('role: db', 'role: dbb'));
    await b.page.goto(`${BASE}/ui/#/`);
    await expect.poll(() => b.page.getByTestId('refused-banner').textContent().catch(() => ''), { timeout: 15_000 })
      .toMatch(/machines\.yaml:\d+:\d+: machines\[\d+\]\.role: unknown role "dbb"/);
    await screenshot(b.page, 'refused-banner');
    writeFileSync(file, good);
    await expect.poll(() => b.page.getByTestId('refused-banner').count(), { timeout: 15_000 }).toBe(0);
  });

  it('sections whose API this server lacks say so instead of breaking', async () => {
    for (const [hash, text] of [['#/inbox', 'no discovery API'], ['#/images', 'no image API']] as const) {
      await b.page.goto(`${BASE}/ui/${hash}`);
      const routes = await apiPaths();
      const has = hash === '#/inbox' ? routes.includes('/api/discovered') : routes.some((p) => /^\/api\/images\/\{[^}]+\}\/versions$/.test(p));
      if (!has) await expect.poll(() => b.page.getByTestId('not-available').textContent(), { timeout: SLOW }).toContain(text);
      // With the image API: one card per role image (web's tar here), read through /api/images/<role>/versions.
      else if (hash === '#/images') await expect.poll(() => b.page.locator('article[data-role="web"] h3').textContent().catch(() => ''), { timeout: SLOW }).toContain('web');
    }
  });

  it('adopts a discovered machine from the inbox', async (ctx) => {
    const paths = await apiPaths();
    if (!paths.includes('/api/discovered')) {
      console.warn('*** SKIPPED adopt in the UI: this server has no discovery API (issue 10 not landed) ***');
      ctx.skip();
    }
    // A blank box: unknown MAC, a pool address from DHCP, then its commissioning report from that address.
    const BLANK = '52:54:00:aa:07:01';
    spawnSync('ip', ['-n', cli, 'addr', 'flush', 'dev', 'rc0']);
    spawnSync('ip', ['-n', cli, 'link', 'set', 'rc0', 'address', BLANK]);
    await inClient('busybox', ['udhcpc', '-i', 'rc0', '-f', '-q', '-n', '-t', '5', '-T', '1', '-s', join(dir, 'udhcpc.sh'), '-V', 'PXEClient:Arch:00000:UNDI:002001', '-x', '93:0000']);
    const report = {
      version: 1, system: { vendor: 'QEMU', product: 'Standard PC', serial: 'UI-SERIAL-0701', uuid: '4c4c4544-0701-4a10-8000-b2c04f000701' },
      cpu: { model: 'QEMU Virtual CPU', sockets: 1, cores: 2, threads: 2 }, memory_mib: 2048,
      disks: [{ name: 'vda', bytes: 8 * 2 ** 30, serial: 'DISK-0701', rotational: false }],
      nics: [{ name: 'eth0', mac: BLANK, driver: 'virtio_net', speed_mbps: 1000, link: true }, { name: 'eth1', mac: '52:54:00:aa:17:01', driver: 'virtio_net', link: false }],
    };
    await inClient('curl', ['-sSf', '-o', '/dev/null', '-H', 'content-type: application/json', '-d', JSON.stringify(report), `${BASE}/api/discovered/${BLANK}`]);
    await b.page.goto(`${BASE}/ui/#/inbox`);
    const card = b.page.locator(`article[data-mac="${BLANK}"]`);
    await expect.poll(() => card.getByTestId('fact-serial').textContent().catch(() => ''), { timeout: SLOW }).toBe('UI-SERIAL-0701');
    // Filled from the matching rule: host from its template, its role; the address is the range's next free one.
    expect(await card.getByLabel('Host').inputValue()).toBe('web-1');
    expect(await card.getByLabel('Role').inputValue()).toBe('web');
    expect(await card.getByLabel('Address').inputValue()).toBe('10.0.0.150');
    await screenshot(b.page, 'inbox');
    await card.getByRole('button', { name: 'Adopt' }).click();
    await expect.poll(() => b.page.getByTestId('inbox-notice').textContent().catch(() => ''), { timeout: 10_000 }).toContain('adopted as web-1');
    await expect.poll(() => card.locator('h3 .tag').textContent(), { timeout: SLOW }).toBe('adopted as web-1');
    const line = readFileSync(join(profiles, 'machines.yaml'), 'utf8').split('\n').find((l) => l.includes('host: web-1'));
    expect(line).toContain(BLANK);
    expect(line).toContain('10.0.0.150');
    expect(line).toContain('52:54:00:aa:17:01');
    expect(line).toContain('role: web');
    await b.page.goto(`${BASE}/ui/#/`);
    await expect.poll(() => b.page.getByTestId('fleet-count').textContent(), { timeout: SLOW }).toBe('11 of 11 machines');
  }, 60_000);

  it('reads power state and runs power cycle and PXE once against the test BMC', async () => {
    await b.page.goto(`${BASE}/ui/#/m/w102`);
    await expect.poll(() => b.page.getByTestId('power-state').textContent(), { timeout: SLOW }).toBe('on');
    await b.page.getByRole('button', { name: 'PXE once' }).click();
    await expect.poll(() => bmcState().boot, { timeout: SLOW }).toEqual({ BootSourceOverrideEnabled: 'Once', BootSourceOverrideTarget: 'Pxe' });
    await b.page.getByRole('button', { name: 'Power cycle' }).click();
    await expect.poll(() => bmcState().resets?.length ?? 0, { timeout: SLOW }).toBeGreaterThan(0);
    await expect.poll(() => b.page.getByRole('status').filter({ hasText: 'Power cycle' }).count(), { timeout: SLOW }).toBe(1);
    await screenshot(b.page, 'machine-w102-power');
    // The fleet shows the state the BMC reported.
    await b.page.goto(`${BASE}/ui/#/`);
    await expect.poll(() => b.page.locator('tr[data-host="w102"] td').nth(8).textContent(), { timeout: SLOW }).toMatch(/^on \(/);
    // A machine without a BMC says so.
    await b.page.goto(`${BASE}/ui/#/m/w103`);
    await expect.poll(() => b.page.locator('.action').filter({ hasText: 'Power' }).textContent(), { timeout: SLOW }).toContain('No BMC configured');
  });

  it('a read-only session sees the machine but cannot act', async () => {
    await b.page.getByRole('button', { name: 'Log out' }).click();
    await b.page.waitForURL('**/ui/login');
    await login(b.page, BASE, READ);
    await b.page.waitForSelector('[data-testid="fleet-count"]', { timeout: SLOW });
    await b.page.goto(`${BASE}/ui/#/m/w106`);
    await b.page.waitForSelector('[data-testid="yaml-line"]', { timeout: SLOW });
    expect(await b.page.getByRole('button', { name: 'Change role' }).isDisabled()).toBe(true);
    const put = await b.page.evaluate((csrf) => fetch('/api/machines/w106/role', { method: 'PUT', headers: { 'content-type': 'application/json', 'x-rolecast-csrf': csrf }, body: '{"role":"web"}' }).then((r) => r.status),
      (await b.page.locator('meta[name="rolecast-csrf"]').getAttribute('content')) ?? '');
    expect(put).toBe(403);
  });
}));
