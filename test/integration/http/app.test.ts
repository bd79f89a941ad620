/**
 * The HTTP app through fastify inject (no listening socket), plus GNU tar and busybox tar on the
 * composed rootfs. Source addresses are set per request to test the secret rule.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, readdirSync, lstatSync, readlinkSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { spawnSync } from 'node:child_process';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../../src/http/app.js';
import { openFileState } from '../../../src/state/file/index.js';
import type { State } from '../../../src/state/types.js';
import { InventoryStore } from '../../../src/inventory/watch.js';
import { defaultConfig } from '../../../src/config.js';
import { silentLogger } from '../../../src/log.js';
import type { Inventory } from '../../../src/inventory/types.js';
import { placeholderImages } from '../../helpers/images.js';


const ROOT = resolve(import.meta.dirname, '../../..');
const dir = mkdtempSync(join(tmpdir(), 'rolecast-http-'));
const LB1 = '52:54:00:00:01:01';
const W101 = '52:54:00:00:02:01';
let app: FastifyInstance;
let inv: InventoryStore;
let override: Inventory | undefined;
const READ_TOKEN = 'read-only-token';
/** A GET of an API route with the operator's read token (the inventory, leases and timelines need one). */
const api = (url: string) => app.inject({ url, headers: { authorization: `Bearer ${READ_TOKEN}` } });
let state: State;

/** A base image with the awkward entries a real one has: symlink, hard link, device, setuid, long name. */
function makeBase(path: string): void {
  const src = join(dir, 'base-src');
  mkdirSync(join(src, 'etc'), { recursive: true });
  mkdirSync(join(src, 'usr/bin'), { recursive: true });
  writeFileSync(join(src, 'etc/hostname'), 'base-image\n');
  writeFileSync(join(src, 'etc/motd'), 'hello from the base\n');
  writeFileSync(join(src, 'usr/bin/tool'), '#!/bin/sh\necho tool\n', { mode: 0o4755 });
  spawnSync('chmod', ['4755', join(src, 'usr/bin/tool')]);
  spawnSync('ln', ['-s', '../usr/bin/tool', join(src, 'etc/tool-link')]);
  spawnSync('ln', [join(src, 'etc/motd'), join(src, 'etc/motd.hard')]);
  const long = `usr/${'d'.repeat(120)}/${'f'.repeat(120)}`;
  mkdirSync(join(src, long, '..'), { recursive: true });
  writeFileSync(join(src, long), 'long name\n');
  spawnSync('mknod', [join(src, 'etc/null'), 'c', '1', '3']);
  mkdirSync(join(path, '..'), { recursive: true });
  const r = spawnSync('tar', ['--numeric-owner', '-C', src, '-cf', path, '.'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
}

beforeAll(async () => {
  cpSync(join(ROOT, 'test/fixtures/profiles'), join(dir, 'profiles'), { recursive: true });
  makeBase(join(dir, 'images/build/rootfs/lb.tar'));
  await placeholderImages(join(dir, 'profiles'), join(dir, 'images'));
  const cfg = { ...defaultConfig(), profilesDir: join(dir, 'profiles'), dataDir: join(dir, 'data'), imagesDir: join(dir, 'images'), address: '10.0.0.1' };
  cfg.http = { ...cfg.http, token: 's3cret-token', tokens: { read: [READ_TOKEN] } };
  inv = await InventoryStore.open(cfg.profilesDir, silentLogger());
  state = await openFileState(cfg.dataDir, cfg.profilesDir, silentLogger());
  app = await buildApp({ getInventory: () => override ?? inv.current(), config: cfg, logger: silentLogger(), state, reload: () => inv.reload() });
});
afterAll(async () => { await app.close(); await state.close(); inv.close(); rmSync(dir, { recursive: true, force: true }); });

describe('boot routes', () => {
  it('serves the iPXE script, the chain script and boot configs', async () => {
    const r = await app.inject(`/boot/${W101}.ipxe`);
    expect(r.statusCode).toBe(200);
    expect(r.body).toMatch(/^#!ipxe\n/);
    expect((await app.inject('/boot.ipxe')).body).toContain('${net0/mac}');
    expect((await app.inject(`/boot/${W101}/grub.cfg`)).body).toMatch(/linux \(tftp,10\.0\.0\.1\)\/images\/kernel /);
    expect((await app.inject(`/boot/${W101}/pxelinux.cfg`)).body).toMatch(/KERNEL images\/kernel/);
    expect((await app.inject(`/boot/${W101}.ipxe?arch=7`)).body).toMatch(/ initrd=initrd /);
  });

  it('bad MAC 400, unknown MAC under an ignore policy 404, a render failure 500 with its code', async () => {
    expect((await app.inject('/boot/zz.ipxe')).json()).toMatchObject({ code: 'E_BAD_MAC' });
    const cur = inv.current();
    override = { ...cur, site: { ...cur.site, unknown: { policy: 'ignore' } } };
    const unknown = await app.inject('/boot/52:54:00:ff:ff:ff.ipxe');
    expect(unknown.statusCode).toBe(404);
    override = { ...cur, roles: { ...cur.roles, web: { ...cur.roles.web!, kernel: 'nope' } } };
    const broken = await app.inject(`/boot/${W101}.ipxe`);
    override = undefined;
    expect(broken.statusCode).toBe(500);
    expect(broken.json()).toMatchObject({ code: 'E_RENDER' });
  });
});

describe('input validation', () => {
  it('path parameters that are too long or hold control characters or spaces are a 400, on every file route', async () => {
    for (const url of [`/images/${'x'.repeat(300)}`, '/images/a%01b', '/rootfs/a%20b.tar', `/loaders/${'y'.repeat(1100)}`, '/boot/a%0Ab.ipxe', '/api/machines/a%7Fb']) {
      const r = await app.inject(url);
      expect(r.statusCode, url).toBe(400);
      expect(r.json(), url).toMatchObject({ code: 'E_BAD_REQUEST' });
    }
    const doc = (await app.inject('/api/openapi.json')).json() as { paths: Record<string, { get?: { parameters?: Array<{ name: string; in: string }> } }> };
    expect(doc.paths['/images/{name}']?.get?.parameters).toEqual(expect.arrayContaining([expect.objectContaining({ name: 'name', in: 'path' })]));
  });
});

describe('rootfs', () => {
  const fromLb1 = { remoteAddress: '10.0.0.11' };

  it('the rootfs holds no secret (issue 16: they come only in the boot bundle); /files refuses them to anyone, and logs it', async () => {
    const r = await app.inject({ url: `/rootfs/${LB1}.tar`, remoteAddress: '10.0.0.12' });
    expect(r.statusCode).toBe(200);
    const names = spawnSync('tar', ['-t'], { input: r.rawPayload, encoding: 'utf8' }).stdout;
    expect(names).toMatch(/etc\/hostname/);
    expect(names).not.toMatch(/keepalived\.conf/);
    expect(r.rawPayload.includes('auth_pass')).toBe(false);
    for (const from of ['10.0.0.99', '10.0.0.11']) {
      const f = await app.inject({ url: `/files/${LB1}/etc/keepalived/keepalived.conf`, remoteAddress: from });
      expect(f.statusCode, from).toBe(403);
      expect(f.json()).toMatchObject({ code: 'E_SECRET' });
      expect(f.body).not.toMatch(/auth_pass/);
    }
    expect((await api(`/api/machines/${LB1}/events`)).json()).toEqual(expect.arrayContaining([expect.objectContaining({ stage: 'http-secret-denied', address: '10.0.0.99' })]));
  });

  it('streams base + generated files; GNU tar and busybox tar extract exactly that; same bytes twice; 304', async () => {
    const a = await app.inject({ url: `/rootfs/${LB1}.tar`, ...fromLb1 });
    expect(a.statusCode).toBe(200);
    const b = await app.inject({ url: `/rootfs/${LB1}.tar`, ...fromLb1 });
    expect(a.rawPayload.equals(b.rawPayload)).toBe(true);
    expect(a.headers.etag).toBe(b.headers.etag);
    expect((await app.inject({ url: `/rootfs/${LB1}.tar`, ...fromLb1, headers: { 'if-none-match': String(a.headers.etag) } })).statusCode).toBe(304);
    writeFileSync(join(dir, 'lb1.tar'), a.rawPayload);
    const files = (await api(`/api/machines/lb1`)).json() as { host: string };
    expect(files.host).toBe('lb1');
    for (const [tool, args] of [['tar', ['-xpf']], ['busybox', ['tar', '-xf']]] as const) {
      const out = join(dir, `x-${tool}`);
      mkdirSync(out);
      const r = spawnSync(tool, [...args, join(dir, 'lb1.tar'), '-C', out], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      expect(readFileSync(join(out, 'etc/hostname'), 'utf8')).toBe('lb1\n'); // replaced
      expect(readFileSync(join(out, 'etc/motd'), 'utf8')).toBe('hello from the base\n'); // kept
      expect(readlinkSync(join(out, 'etc/tool-link'))).toBe('../usr/bin/tool');
      expect(statSync(join(out, 'etc/motd.hard')).ino).toBe(statSync(join(out, 'etc/motd')).ino);
      expect(lstatSync(join(out, 'etc/null')).isCharacterDevice()).toBe(true);
      expect(readdirSync(join(out, 'usr', 'd'.repeat(120)))).toEqual(['f'.repeat(120)]);
      expect(existsSync(join(out, 'etc/keepalived/keepalived.conf'))).toBe(false); // secret: in the boot bundle
      if (tool === 'tar') expect(statSync(join(out, 'usr/bin/tool')).mode & 0o7777).toBe(0o4755);
    }
    const gz = await app.inject({ url: `/rootfs/${LB1}.tar.gz`, ...fromLb1 });
    expect(gz.statusCode).toBe(200);
    expect(gz.rawPayload.subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b]));
    expect(gz.headers.etag).not.toBe(a.headers.etag);
    const zst = await app.inject({ url: `/rootfs/${LB1}.tar.zst`, ...fromLb1 });
    expect(zst.statusCode).toBe(200);
    expect(zst.rawPayload.subarray(0, 4)).toEqual(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]));
    const unz = spawnSync('zstd', ['-d', '-c'], { input: zst.rawPayload });
    expect(unz.stdout.equals(a.rawPayload)).toBe(true);
  });

  it('serves loaders over HTTP (UEFI HTTP boot) from the TFTP roots, confined, and rendered GRUB configs', async () => {
    const efi = readFileSync('/usr/lib/ipxe/ipxe.efi'); // Debian links this into /boot: a trusted loader link
    const r = await app.inject({ url: '/loaders/ipxe.efi', remoteAddress: '10.0.0.101' });
    expect(r.statusCode).toBe(200);
    expect(r.rawPayload.equals(efi)).toBe(true);
    expect(r.headers['content-length']).toBe(String(efi.length));
    const part = await app.inject({ url: '/loaders/ipxe.efi', headers: { range: 'bytes=0-1' } });
    expect([part.statusCode, part.rawPayload.toString('latin1')]).toEqual([206, 'MZ']);
    expect((await app.inject('/loaders/nope.efi')).statusCode).toBe(404);
    expect((await app.inject('/loaders/..%2F..%2Fetc%2Fpasswd')).statusCode).toBeGreaterThanOrEqual(400);
    expect((await app.inject('/loaders/../../etc/passwd')).body).not.toMatch(/root:/);
    const cfg = await app.inject({ url: `/loaders/grub.cfg-01-${W101.replace(/:/g, '-')}`, remoteAddress: '10.0.0.101' });
    expect(cfg.statusCode).toBe(200);
    expect(cfg.body).toMatch(/menuentry 'w101 as web'/);
    const events = (await api(`/api/machines/${W101}/events`)).json() as Array<{ stage: string; detail?: string }>;
    expect(events).toEqual(expect.arrayContaining([expect.objectContaining({ stage: 'http-loader', detail: 'ipxe.efi' }), expect.objectContaining({ stage: 'http-config' })]));
  });

  it('a .tar rootfs has a Content-Length, answers HEAD and resumes with Range / If-Range', async () => {
    const full = await app.inject({ url: `/rootfs/${LB1}.tar`, ...fromLb1 });
    expect(full.headers['content-length']).toBe(String(full.rawPayload.length));
    expect(full.headers['accept-ranges']).toBe('bytes');
    const head = await app.inject({ method: 'HEAD', url: `/rootfs/${LB1}.tar`, ...fromLb1 });
    expect(head.statusCode).toBe(200);
    expect(head.headers['content-length']).toBe(String(full.rawPayload.length));
    expect(head.rawPayload.length).toBe(0);
    const etag = String(full.headers.etag);
    const part = await app.inject({ url: `/rootfs/${LB1}.tar`, ...fromLb1, headers: { range: 'bytes=1000-', 'if-range': etag } });
    expect(part.statusCode).toBe(206);
    expect(part.headers['content-range']).toBe(`bytes 1000-${full.rawPayload.length - 1}/${full.rawPayload.length}`);
    expect(part.rawPayload.equals(full.rawPayload.subarray(1000))).toBe(true);
    // The machine's files changed since the first part: If-Range no longer matches, the whole new body.
    const stale = await app.inject({ url: `/rootfs/${LB1}.tar`, ...fromLb1, headers: { range: 'bytes=1000-', 'if-range': '"old"' } });
    expect(stale.statusCode).toBe(200);
    expect(stale.rawPayload.equals(full.rawPayload)).toBe(true);
    const past = await app.inject({ url: `/rootfs/${LB1}.tar`, ...fromLb1, headers: { range: `bytes=${full.rawPayload.length}-` } });
    expect(past.statusCode).toBe(416);
    expect(past.headers['content-range']).toBe(`bytes */${full.rawPayload.length}`);
    // Anyone gets the same bytes and ETag: nothing in them, or in the ETag, derives from a secret.
    const other = await app.inject({ url: `/rootfs/${LB1}.tar`, remoteAddress: '10.0.0.12' });
    expect(other.rawPayload.equals(full.rawPayload)).toBe(true);
    expect(other.headers.etag).toBe(full.headers.etag);
  });

  it('a base image that is not a tar is a 500 naming the file and offset, not a crash or a truncated stream', async () => {
    const path = join(dir, 'images/build/rootfs/lb.tar');
    const good = readFileSync(path);
    try {
      const bad = Buffer.from(good);
      bad[20] = bad[20]! ^ 0xff;
      writeFileSync(path, bad);
      const r = await app.inject({ url: `/rootfs/${LB1}.tar`, ...fromLb1 });
      expect(r.statusCode).toBe(500);
      expect(r.json()).toMatchObject({ code: 'E_BAD_IMAGE', message: expect.stringMatching(/lb\.tar: not a valid tar archive at byte 0: header checksum/) });
    } finally {
      writeFileSync(path, good);
    }
  });

  it('images: HEAD, Range, If-Range, 304 by ETag and by date; a named image missing on disk is our failure (500), an unknown name 404', async () => {
    const kernel = Buffer.from(Array.from({ length: 100_000 }, (_, i) => i % 251));
    rmSync(join(dir, 'images/build/vmlinuz')); // the placeholder: this test writes its own kernel
    expect((await app.inject('/images/kernel')).json()).toMatchObject({ code: 'E_NO_IMAGE' });
    expect((await app.inject('/images/kernel')).statusCode).toBe(500);
    writeFileSync(join(dir, 'images/build/vmlinuz'), kernel);
    const full = await app.inject('/images/kernel');
    expect(full.statusCode).toBe(200);
    expect(full.rawPayload.equals(kernel)).toBe(true);
    expect(full.headers['content-length']).toBe('100000');
    const etag = String(full.headers.etag);
    expect(etag).toMatch(/^"[0-9a-f-]+"$/);
    const head = await app.inject({ method: 'HEAD', url: '/images/kernel' });
    expect([head.statusCode, head.headers['content-length'], head.rawPayload.length]).toEqual([200, '100000', 0]);
    const part = await app.inject({ url: '/images/kernel', headers: { range: 'bytes=-100', 'if-range': etag } });
    expect(part.statusCode).toBe(206);
    expect(part.rawPayload.equals(kernel.subarray(99_900))).toBe(true);
    expect((await app.inject({ url: '/images/kernel', headers: { 'if-none-match': etag } })).statusCode).toBe(304);
    expect((await app.inject({ url: '/images/kernel', headers: { 'if-modified-since': String(full.headers['last-modified']) } })).statusCode).toBe(304);
    expect((await app.inject({ url: '/images/kernel', headers: { range: 'bytes=100000-' } })).statusCode).toBe(416);
    expect((await app.inject('/images/nope')).statusCode).toBe(404);
  });

  it('records what it served: /api/machines says whether the next boot changes', async () => {
    await app.inject({ url: `/rootfs/${LB1}.tar`, remoteAddress: '10.0.0.11' });
    await new Promise((r) => setTimeout(r, 100));
    const rows = (await api('/api/machines')).json() as Array<{ host: string; changed: boolean | null; lastStage: string | null }>;
    expect(rows.find((r) => r.host === 'lb1')).toMatchObject({ changed: false, lastStage: 'http-rootfs' });
    expect(rows.find((r) => r.host === 'w101')?.changed).toBeNull();
  });
});

describe('API', () => {
  it('phone-home events land in the timeline; bad input is a 400', async () => {
    expect((await app.inject({ method: 'POST', url: `/api/machines/${W101}/events`, payload: { stage: 'booted', detail: 'role web up' } })).statusCode).toBe(202);
    const t = (await api(`/api/machines/${W101}/events`)).json() as Array<{ stage: string; host: string }>;
    expect(t.at(-1)).toMatchObject({ stage: 'booted', host: 'w101' });
    expect((await app.inject({ method: 'POST', url: `/api/machines/${W101}/events`, payload: { stage: 'exploded' } })).statusCode).toBe(400);
    expect((await app.inject({ method: 'POST', url: `/api/machines/${W101}/events`, payload: { stage: 'booted', extra: 1 } })).statusCode).toBe(400);
  });

  it('PUT role needs the bearer token, validates, and edits the YAML', async () => {
    const put = (headers: Record<string, string>, role: string) => app.inject({ method: 'PUT', url: '/api/machines/w106/role', headers, payload: { role } });
    expect((await put({}, 'lb')).statusCode).toBe(401);
    expect((await put({ authorization: 'Bearer wrong' }, 'lb')).statusCode).toBe(401);
    const bad = await put({ authorization: 'Bearer s3cret-token' }, 'nosuch');
    expect(bad.statusCode).toBe(422);
    expect(bad.json().issues[0]).toMatch(/unknown role "nosuch"/);
    expect((await put({ authorization: 'Bearer s3cret-token' }, 'lb')).statusCode).toBe(200);
    expect(readFileSync(join(dir, 'profiles/machines.yaml'), 'utf8')).toMatch(/host: w106, .*role: lb,/);
    expect(inv.current().byHost.get('w106')?.role).toBe('lb');
  });

  it('metrics count boot events and responses; OpenAPI lists the routes', async () => {
    await app.inject(`/boot/${W101}.ipxe`);
    const m = (await app.inject('/metrics')).body;
    expect(m).toMatch(/^rolecast_boot_events_total\{stage="http-script"\} [1-9]/m);
    expect(m).toMatch(/^rolecast_http_responses_total\{route="\/boot\/:file",status="2xx"\} [1-9]/m);
    const doc = (await app.inject('/api/openapi.json')).json() as { openapi: string; paths: Record<string, unknown> };
    expect(doc.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/api/machines/{mac}/events', '/api/machines/{host}/role', '/rootfs/{file}']));
  });

  it('streams boot events over SSE', async () => {
    const addr = await app.listen({ host: '127.0.0.1', port: 0 });
    const ctrl = new AbortController();
    const res = await fetch(`${addr}/api/events`, { signal: ctrl.signal, headers: { authorization: `Bearer ${READ_TOKEN}` } });
    const reader = res.body!.getReader();
    await reader.read(); // the comment line
    await app.inject({ method: 'POST', url: `/api/machines/${W101}/events`, payload: { stage: 'failed', detail: 'no rootfs' } });
    const { value } = await reader.read();
    ctrl.abort();
    expect(new TextDecoder().decode(value)).toMatch(/^event: failed\ndata: \{.*"detail":"no rootfs"/);
  });

  it('healthz and leases', async () => {
    expect((await app.inject('/healthz')).json()).toMatchObject({ ok: true, machines: 10 });
    expect((await api('/api/leases')).json()).toEqual([]);
  });
});
