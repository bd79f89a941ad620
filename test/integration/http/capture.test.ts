/**
 * Capture without a VM: w101's composed rootfs (fastify inject from w101's address) is unpacked with
 * GNU tar, changed, and the real tool (images/capture/rolecast-capture) runs on it under busybox sh
 * with only busybox's applets on PATH, as on the test image; its upload goes to the capture route.
 * Then the refusals: another machine's address, no or the wrong credential, rendered and secret
 * paths, oversized and malformed uploads — each with a clear error and no new version.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync, chmodSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../../src/http/app.js';
import { openFileState } from '../../../src/state/file/index.js';
import type { State } from '../../../src/state/types.js';
import { InventoryStore } from '../../../src/inventory/watch.js';
import { defaultConfig } from '../../../src/config.js';
import { silentLogger } from '../../../src/log.js';
import { bootBundle, placeholderBootImages } from '../../helpers/boot-secrets.js';
import { serverKey } from '../../../src/serverkey.js';
import { buildTestImage } from '../../../src/images/testimage.js';
import { listVersions, readHistory } from '../../../src/images/versions.js';
import { CAPTURE_TOOL } from '../../../src/rootfs/capture-files.js';

const ROOT = resolve(import.meta.dirname, '../../..');
const dir = mkdtempSync(join(tmpdir(), 'rolecast-capture-'));
const W101 = { mac: '52:54:00:00:02:01', ip: '10.0.0.101' };
const W102 = { mac: '52:54:00:00:02:02', ip: '10.0.0.102' };
const ADMIN = 'admin-token';
const rootfsDir = join(dir, 'images/build/rootfs');
const box = join(dir, 'w101');
const bin = join(dir, 'busybox-bin');
let app: FastifyInstance;
let inv: InventoryStore;
let state: State;

/** Run the capture tool on the unpacked box with busybox's applets only (as on the test image). */
function tool(args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync('/bin/busybox', ['sh', CAPTURE_TOOL, ...args], { encoding: 'utf8', env: { PATH: bin, ROLECAST_CAPTURE_ROOT: box } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}
const key = (b = box) => readFileSync(join(b, 'etc/rolecast/capture.key'), 'utf8').trim();
const post = (mac: string, from: string, body: Buffer, auth?: string) => app.inject({
  method: 'POST', url: `/api/machines/${mac}/capture`, remoteAddress: from, payload: body,
  headers: { 'content-type': 'application/x-tar', ...(auth ? { authorization: `Bearer ${auth}` } : {}) },
});
/** As the tool sends it (busybox wget cannot post NUL bytes): base64. */
const postB64 = (mac: string, from: string, body: Buffer, auth: string) => app.inject({
  method: 'POST', url: `/api/machines/${mac}/capture`, remoteAddress: from, payload: body.toString('base64').replace(/.{76}/g, '$&\n'),
  headers: { 'content-type': 'application/x-tar+base64', authorization: `Bearer ${auth}` },
});
const upload = (args: string[]) => {
  const out = join(dir, `upload-${Math.random().toString(36).slice(2)}.tar`);
  const r = tool(['-o', out, ...args]);
  expect(r.code, r.err).toBe(0);
  return readFileSync(out);
};
const versionCount = async () => (await listVersions(rootfsDir, 'test')).all.length;

beforeAll(async () => {
  cpSync(join(ROOT, 'test/fixtures/profiles'), join(dir, 'profiles'), { recursive: true });
  const machines = join(dir, 'profiles/machines.yaml');
  writeFileSync(machines, readFileSync(machines, 'utf8').replace(/(host: w10[12],.*?)role: web/g, '$1role: test'));
  await buildTestImage(join(dir, 'images/build'));
  placeholderBootImages(join(dir, 'images'));
  mkdirSync(bin);
  spawnSync('/bin/busybox', ['--install', '-s', bin]);
  // No wget: the tool here only writes its upload (-o); it must never reach the manifest's lab address.
  unlinkSync(join(bin, 'wget'));
  const cfg = { ...defaultConfig(), profilesDir: join(dir, 'profiles'), dataDir: join(dir, 'data'), imagesDir: join(dir, 'images'), address: '10.0.0.1' };
  cfg.http = { ...cfg.http, tokens: { admin: [ADMIN] }, captureMaxBytes: 2 * 1024 * 1024 };
  // inject() has no source port to check (test/helpers/boot-secrets.ts); the secret path's own test does.
  cfg.secrets = { ...cfg.secrets, requirePrivilegedPort: false };
  inv = await InventoryStore.open(cfg.profilesDir, silentLogger());
  state = await openFileState(cfg.dataDir, cfg.profilesDir, silentLogger());
  app = await buildApp({ getInventory: () => inv.current(), config: cfg, logger: silentLogger(), state, serverKey: await serverKey(cfg.dataDir) });
  // w101 boots: its rootfs from its own address, unpacked as the initramfs would (owners kept).
  const r = await app.inject({ url: `/rootfs/${W101.mac}.tar`, remoteAddress: W101.ip });
  expect(r.statusCode).toBe(200);
  mkdirSync(box);
  const x = spawnSync('tar', ['-xf', '-', '-C', box], { input: r.rawPayload });
  expect(x.status, x.stderr.toString()).toBe(0);
  // Its secret files (the capture credential) arrive in the boot-time bundle, as the initramfs puts them.
  const s = spawnSync('tar', ['-xf', '-', '-C', box], { input: await bootBundle(app, state, W101.mac, W101.ip) });
  expect(s.status, s.stderr.toString()).toBe(0);
  rmSync(join(box, 'rolecast-boot.key'));
});
afterAll(async () => { await app.close(); await state.close(); inv.close(); rmSync(dir, { recursive: true, force: true }); });

describe('the rootfs carries the capture tool, the manifest and the credential', () => {
  it('tool 0755, manifest naming server, MAC and base version, credential 0600 and only to w101', async () => {
    expect(statSync(join(box, 'usr/sbin/rolecast-capture')).mode & 0o777).toBe(0o755);
    const m = readFileSync(join(box, 'etc/rolecast/manifest'), 'utf8');
    const current = (await listVersions(rootfsDir, 'test')).current!;
    expect(m).toContain(`# server http://10.0.0.1:8080\n# mac ${W101.mac}\n# image test-root\n# version ${current}\n`);
    expect(m).toMatch(/^f 755 0:0 [0-9a-f]{64} \/sbin\/init$/m);
    expect(m).toMatch(/^r 644 0:0 [0-9a-f]{64} \/etc\/hostname$/m);
    expect(m).toMatch(/^s 600 0:0 - \/etc\/rolecast\/capture\.key$/m);
    expect(m).toMatch(/^l 777 0:0 \/bin\/busybox \/usr\/bin\/wget$/m);
    expect(statSync(join(box, 'etc/rolecast/capture.key')).mode & 0o777).toBe(0o600);
    expect(key()).toMatch(/^[0-9a-f]{64}$/);
    // Not in the rootfs (which goes to anyone), and the bundle does not go to another box's address.
    const other = await app.inject({ url: `/rootfs/${W101.mac}.tar`, remoteAddress: W102.ip });
    expect(spawnSync('tar', ['-t'], { input: other.rawPayload, encoding: 'utf8' }).stdout).not.toMatch(/capture\.key/);
    expect((await app.inject({ url: `/secrets/${W101.mac}`, remoteAddress: W102.ip })).statusCode).toBe(403);
    expect(tool(['--changed', '-n']).out).toBe('rolecast-capture: nothing differs from ' + current + '\n');
  });
});

describe('capture → a new version that is not current yet', () => {
  it('--changed lists new, changed, deleted, mode and owner; rendered files are skipped with the reason', async () => {
    writeFileSync(join(box, 'etc/motd'), 'fixed on the running box\n');
    writeFileSync(join(box, 'etc/app.conf'), 'key=value\n');
    unlinkSync(join(box, 'etc/rolecast/phones-home'));
    chmodSync(join(box, 'sbin/init'), 0o700);
    spawnSync('chown', ['1000:1000', join(box, 'root')]);
    writeFileSync(join(box, 'etc/hostname'), 'renamed-by-hand\n');
    writeFileSync(join(box, 'run/ignored'), 'runtime\n');
    const r = tool(['--changed', '-n']);
    expect(r.code, r.err).toBe(0);
    expect(r.out.trim().split('\n')).toEqual([
      'A /etc/app.conf',
      '- /etc/hostname (rendered per machine by rolecast: change it in the profiles)',
      'M /etc/motd',
      'D /etc/rolecast/phones-home',
      'O /root (0:0 -> 1000:1000)',
      'P /sbin/init (755 -> 700)',
    ]);
    // A Debian role image has dash and GNU coreutils/findutils/tar/mawk instead: the same list.
    const gnu = spawnSync('/bin/sh', [CAPTURE_TOOL, '--changed', '-n'], { encoding: 'utf8', env: { PATH: '/usr/bin:/bin', ROLECAST_CAPTURE_ROOT: box } });
    expect(gnu.status, gnu.stderr).toBe(0);
    expect(gnu.stdout).toBe(r.out);
  });

  it('the upload becomes a version = base + those changes, recorded with who, what, when and which box', async () => {
    const before = await listVersions(rootfsDir, 'test');
    const body = upload(['-m', 'fix motd, add app.conf', '--changed']);
    const r = await postB64(W101.mac, W101.ip, body, key());
    expect(r.statusCode, r.body).toBe(201);
    const res = r.json<{ version: string; base: string; changes: { path: string; change: string }[] }>();
    expect(res.base).toBe(before.current);
    expect(res.changes.map((c) => `${c.change} ${c.path}`).sort()).toEqual(['added /etc/app.conf', 'changed /etc/motd', 'deleted /etc/rolecast/phones-home', 'mode /sbin/init', 'owner /root']);
    const after = await listVersions(rootfsDir, 'test');
    expect(after.current).toBe(before.current); // staged, not current
    expect(after.all).toContain(res.version);
    const rec = (await readHistory(rootfsDir, 'test')).versions.find((v) => v.file === res.version);
    expect(rec).toMatchObject({ kind: 'captured', parent: before.current, what: 'fix motd, add app.conf', box: { host: 'w101', mac: W101.mac, address: W101.ip } });
    expect(rec?.by).toMatch(/@/);
    // GNU tar reads the new version: the changes are in, the rest of the base is untouched.
    const list = spawnSync('tar', ['--numeric-owner', '-tvf', join(rootfsDir, res.version)], { encoding: 'utf8' }).stdout;
    expect(list).toMatch(/^-rw-r--r-- 0\/0 +10 .* etc\/app\.conf$/m);
    expect(list).toMatch(/^-rwx------ 0\/0 .* sbin\/init$/m);
    expect(list).toMatch(/^d.* 1000\/1000 .* root\/$/m);
    expect(list).not.toMatch(/phones-home/);
    expect(list).not.toMatch(/etc\/hostname/);
    expect(spawnSync('tar', ['-xOf', join(rootfsDir, res.version), 'etc/motd'], { encoding: 'utf8' }).stdout).toBe('fixed on the running box\n');
    // The same capture again changes nothing new: same content, same version.
    const again = await post(W101.mac, W101.ip, body, key());
    expect(again.json()).toMatchObject({ version: res.version });
    expect(await versionCount()).toBe(after.all.length);
  });

  it('versions and diff over the API (admin token)', async () => {
    const auth = { authorization: `Bearer ${ADMIN}` };
    const v = await app.inject({ url: '/api/images/test/versions', headers: auth });
    expect(v.statusCode).toBe(200);
    const rows = v.json<{ versions: { kind: string; current: boolean }[] }>().versions;
    expect(rows.map((x) => [x.kind, x.current])).toEqual([['built', true], ['captured', false]]);
    const d = await app.inject({ url: '/api/images/test/diff', headers: auth });
    const diff = d.json<{ files: { path: string; change: string }[]; diff: string }>();
    expect(diff.files.map((f) => `${f.change} ${f.path}`)).toEqual(['added /etc/app.conf', 'changed /etc/motd', 'deleted /etc/rolecast/phones-home', 'owner /root', 'mode /sbin/init']);
    expect(diff.diff).toContain('--- a/etc/motd\n+++ b/etc/motd\n@@ -1 +1 @@\n-rolecast test image\n+fixed on the running box\n');
    expect(diff.diff).toContain('+key=value');
    expect((await app.inject({ url: '/api/images/test/versions' })).statusCode).toBe(401);
    expect((await app.inject({ url: '/api/images/nope/versions', headers: auth })).statusCode).toBe(404);
  });
});

describe('try on one machine, promote, roll back: the plan picks the version', () => {
  const has = async (mac: string, ip: string) => {
    const r = await app.inject({ url: `/rootfs/${mac}.tar`, remoteAddress: ip });
    expect(r.statusCode).toBe(200);
    return spawnSync('tar', ['-tf', '-'], { input: r.rawPayload, encoding: 'utf8' }).stdout.includes('etc/app.conf');
  };
  const auth = { authorization: `Bearer ${ADMIN}` };
  const changed = async () => (await app.inject({ url: '/api/machines', headers: auth })).json<{ host: string; changed: boolean | null }[]>()
    .filter((m) => m.changed).map((m) => m.host).sort();

  it('try stages the capture on w101 only; promote gives it to w102; rollback takes it back', async () => {
    const v = await listVersions(rootfsDir, 'test');
    const captured = v.all.find((f) => f !== v.current)!;
    const sha12 = captured.slice(5, 17);
    expect(await has(W101.mac, W101.ip)).toBe(false);
    expect(await has(W102.mac, W102.ip)).toBe(false);
    expect(await changed()).toEqual([]);
    const t = await app.inject({ method: 'PUT', url: '/api/images/test/try/w101', headers: auth, payload: { version: sha12 } });
    expect(t.statusCode, t.body).toBe(200);
    expect(await changed()).toEqual(['w101']); // the next boot of w101 changes, nobody else's
    expect(await has(W101.mac, W101.ip)).toBe(true);
    expect(await has(W102.mac, W102.ip)).toBe(false);
    expect((await app.inject({ method: 'PUT', url: '/api/images/test/try/lb1', headers: auth, payload: { version: sha12 } })).statusCode).toBe(400);
    const p = await app.inject({ method: 'POST', url: '/api/images/test/promote', headers: auth, payload: { version: sha12 } });
    expect(p.json()).toMatchObject({ current: captured });
    expect(await changed()).toEqual(['w102']);
    expect(await has(W102.mac, W102.ip)).toBe(true);
    expect((await readHistory(rootfsDir, 'test')).pins).toEqual({});
    const r = await app.inject({ method: 'POST', url: '/api/images/test/rollback', headers: auth });
    expect(r.json()).toMatchObject({ previous: captured });
    expect(await changed()).toEqual(['w101', 'w102']);
    expect(await has(W101.mac, W101.ip)).toBe(false);
    expect(await has(W102.mac, W102.ip)).toBe(false);
    expect((await app.inject({ method: 'POST', url: '/api/images/test/rollback', headers: { authorization: 'Bearer nope' } })).statusCode).toBe(401);
  });
});

describe('refused captures leave no version', () => {
  it('from another machine\'s address, without the credential, or with another machine\'s', async () => {
    const n = await versionCount();
    writeFileSync(join(box, 'etc/app.conf'), 'key=other\n');
    const body = upload(['--changed']);
    const other = await post(W101.mac, W102.ip, body, key());
    expect(other.statusCode).toBe(403);
    expect(other.json()).toMatchObject({ code: 'E_CAPTURE_ADDRESS' });
    expect(other.statusMessage).toMatch(/come only from w101's own address/);
    expect((await post(W101.mac, W101.ip, body)).json()).toMatchObject({ code: 'E_CAPTURE_CREDENTIAL' });
    expect((await post(W101.mac, W101.ip, body, 'f'.repeat(64))).statusCode).toBe(401);
    // w102's own credential, from its own boot bundle.
    const w102 = await bootBundle(app, state, W102.mac, W102.ip);
    const key102 = spawnSync('tar', ['-xOf', '-', 'etc/rolecast/capture.key'], { input: w102, encoding: 'utf8' }).stdout.trim();
    expect(key102).toMatch(/^[0-9a-f]{64}$/);
    expect(key102).not.toBe(key());
    expect((await post(W101.mac, W101.ip, body, key102)).statusCode).toBe(401);
    expect((await post(W102.mac, W102.ip, body, key())).statusCode).toBe(401);
    expect(await versionCount()).toBe(n);
  });

  it('a rendered file or a secret is refused for that path, with the reason', async () => {
    const n = await versionCount();
    writeFileSync(join(box, 'etc/shadow'), 'root:$6$hash:19000::::::\n');
    const r = await post(W101.mac, W101.ip, upload(['/etc/hostname', '/etc/motd']), key());
    expect(r.statusCode).toBe(422);
    expect(r.json()).toMatchObject({ code: 'E_CAPTURE_REFUSED', refused: [{ path: '/etc/hostname', reason: expect.stringMatching(/rendered per machine/) }] });
    const s = await post(W101.mac, W101.ip, upload(['/etc/shadow', '/etc/rolecast/capture.key', '/etc/motd']), key());
    expect(s.statusCode).toBe(422);
    expect(s.json<{ refused: { path: string; reason: string }[] }>().refused.map((x) => [x.path, /secret/.test(x.reason)])).toEqual([['/etc/rolecast/capture.key', true], ['/etc/shadow', true]]);
    unlinkSync(join(box, 'etc/shadow'));
    expect(await versionCount()).toBe(n);
  });

  it('oversized and malformed uploads: a clear error naming the field', async () => {
    const n = await versionCount();
    const big = await post(W101.mac, W101.ip, randomBytes(3 * 1024 * 1024), key());
    expect(big.statusCode).toBe(413);
    expect(big.json()).toMatchObject({ code: 'E_CAPTURE_TOO_LARGE', field: 'body' });
    const b64 = await app.inject({ method: 'POST', url: `/api/machines/${W101.mac}/capture`, remoteAddress: W101.ip, payload: 'not*base64!', headers: { 'content-type': 'application/x-tar+base64', authorization: `Bearer ${key()}` } });
    expect(b64.statusCode).toBe(400);
    expect(b64.json()).toMatchObject({ code: 'E_CAPTURE_MALFORMED', field: 'body' });
    const junk = await post(W101.mac, W101.ip, randomBytes(4096), key());
    expect(junk.statusCode).toBe(400);
    expect(junk.json()).toMatchObject({ code: 'E_CAPTURE_MALFORMED', field: 'upload' });
    const pack = (request: string, extra: [string, string][] = []) => {
      const d = mkdtempSync(join(dir, 'req-'));
      mkdirSync(join(d, 'run/rolecast-capture'), { recursive: true });
      writeFileSync(join(d, 'run/rolecast-capture/request'), request);
      for (const [p, c] of extra) { mkdirSync(join(d, p, '..'), { recursive: true }); writeFileSync(join(d, p), c); }
      return spawnSync('tar', ['-cf', '-', '-C', d, 'run/rolecast-capture/request', ...extra.map(([p]) => p)]).stdout;
    };
    const cases: [Buffer, string, RegExp][] = [
      [pack('rolecast-capture 1\nwhat no base\n'), 'request (base)', /missing/],
      [pack('hello\n'), 'request line 1', /rolecast-capture 1/],
      [pack('rolecast-capture 1\nbase test-000000000000.tar\ncolour blue\n'), 'request line 3', /unknown field "colour"/],
      [pack('rolecast-capture 1\nbase x\ndelete /etc/../../x\n'), 'request line 3 (delete)', /must not contain/],
      [spawnSync('tar', ['-cf', '-', '-C', box, 'etc/motd']).stdout, 'upload', /first member must be/],
    ];
    for (const [body, field, message] of cases) {
      const r = await post(W101.mac, W101.ip, body, key());
      expect(r.statusCode, r.body).toBe(400);
      expect(r.json(), field).toMatchObject({ code: 'E_CAPTURE_MALFORMED', field });
      expect(r.json<{ message: string }>().message).toMatch(message);
    }
    const gone = await post(W101.mac, W101.ip, pack('rolecast-capture 1\nbase test-000000000000.tar\n', [['etc/x', 'x\n']]), key());
    expect(gone.statusCode).toBe(409);
    expect(gone.json()).toMatchObject({ code: 'E_CAPTURE_BASE_GONE' });
    expect(await versionCount()).toBe(n);
    expect(existsSync(join(box, 'run/rolecast-capture'))).toBe(false);
  });
});
