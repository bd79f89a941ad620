/**
 * Hostile battery, HTTP (issue 16): traversal paths on every file route over a raw socket (no client
 * normalises them), token edge cases, and the .zst rootfs on a host without zstd (the server died on
 * the child's unhandled 'error' event). Nothing outside the roots, no secret, no crash.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from 'node:net';
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../../src/http/app.js';
import { openFileState } from '../../../src/state/file/index.js';
import { InventoryStore } from '../../../src/inventory/watch.js';
import { defaultConfig } from '../../../src/config.js';
import { silentLogger } from '../../../src/log.js';
import { serverKey } from '../../../src/serverkey.js';

const ROOT = resolve(import.meta.dirname, '../../..');
const dir = mkdtempSync(join(tmpdir(), 'rolecast-hostile-http-'));
const LB1 = '52:54:00:00:01:01';
const READ = 'hostile-read';
const CANARY = `canary-${randomBytes(8).toString('hex')}`;
/** What the canary file holds (its name is echoed in 404 messages; its content must never be). */
const CANARY_CONTENT = `content-${randomBytes(16).toString('hex')}`;
let app: FastifyInstance;
let inv: InventoryStore;
let port = 0;
let key: Buffer;

/** One raw HTTP/1.1 request, the path sent exactly as given. */
function raw(path: string, headers: string[] = []): Promise<{ status: number; text: string }> {
  return new Promise((ok, fail) => {
    const s = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    s.on('data', (d) => chunks.push(d));
    s.on('error', fail);
    s.on('close', () => {
      const text = Buffer.concat(chunks).toString('latin1');
      ok({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), text });
    });
    s.write(`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n${headers.map((h) => `${h}\r\n`).join('')}\r\n`);
  });
}

const TRAVERSALS = [
  '../../../../../../etc/passwd', '..%2f..%2f..%2f..%2f..%2fetc%2fpasswd', '%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd',
  '%252e%252e%252f%252e%252e%252fetc%252fpasswd', '..\\..\\..\\..\\etc\\passwd', '..%5c..%5c..%5cetc%5cpasswd',
  '....//....//....//etc/passwd', '/etc/passwd', '%2fetc%2fpasswd', '..%00/etc/passwd', '%00../../etc/passwd',
  '..%c0%af..%c0%af..%c0%afetc/passwd', '.%2e/.%2e/.%2e/.%2e/etc/passwd', '..;/..;/..;/etc/passwd',
  'sub/../../escape.txt', 'escape.txt', `..%2f${CANARY}.txt`, `../${CANARY}.txt`, '../data/server.key',
  '..%2f..%2fdata%2fserver.key', '%2e%2e%2fdata%2fserver.key', 'a/%2e%2e/%2e%2e/data/server.key',
  `${'../'.repeat(40)}etc/passwd`, '~root/.bashrc', 'file:///etc/passwd', '%u002e%u002e/etc/passwd',
];
const PREFIXES = ['/loaders/', '/images/', `/files/${LB1}/`, '/rootfs/', '/secrets/', '/boot/', `/boot/${LB1}/`, '/api/machines/', '/', '//'];

beforeAll(async () => {
  cpSync(join(ROOT, 'test/fixtures/profiles'), join(dir, 'profiles'), { recursive: true });
  mkdirSync(join(dir, 'root/sub'), { recursive: true });
  writeFileSync(join(dir, 'root/ok.efi'), 'MZ loader');
  writeFileSync(join(dir, `${CANARY}.txt`), CANARY_CONTENT);
  symlinkSync(join(dir, `${CANARY}.txt`), join(dir, 'root/escape.txt'));
  const base = join(dir, 'base');
  mkdirSync(join(base, 'etc'), { recursive: true });
  writeFileSync(join(base, 'etc/motd'), 'base\n');
  mkdirSync(join(dir, 'images/build/rootfs'), { recursive: true });
  spawnSync('tar', ['-C', base, '-cf', join(dir, 'images/build/rootfs/lb.tar'), '.']);
  const cfg = { ...defaultConfig(), profilesDir: join(dir, 'profiles'), dataDir: join(dir, 'data'), imagesDir: join(dir, 'images'), address: '10.0.0.1' };
  cfg.tftp = { ...cfg.tftp, roots: [join(dir, 'root')] };
  cfg.http = { ...cfg.http, tokens: { read: [READ] } };
  key = await serverKey(cfg.dataDir);
  inv = await InventoryStore.open(cfg.profilesDir, silentLogger());
  const state = await openFileState(cfg.dataDir, cfg.profilesDir, silentLogger());
  app = await buildApp({ getInventory: () => inv.current(), config: cfg, logger: silentLogger(), state });
  const addr = await app.listen({ host: '127.0.0.1', port: 0 });
  port = Number(new URL(addr).port);
});
afterAll(async () => { await app.close(); inv.close(); rmSync(dir, { recursive: true, force: true }); });

describe('hostile HTTP', () => {
  it(`${TRAVERSALS.length * PREFIXES.length * 2} traversal probes: nothing from outside the roots, no secret, no 5xx`, async () => {
    const leaks: string[] = [];
    let probes = 0;
    for (const prefix of PREFIXES) {
      for (const t of TRAVERSALS) {
        for (const headers of [[], [`Authorization: Bearer ${READ}`]]) {
          const r = await raw(prefix + t, headers);
          probes++;
          if (r.status === 0 || r.status >= 500) leaks.push(`${r.status} ${prefix}${t} ${JSON.stringify(r.text.slice(0, 300))}`);
          if (/root:x:0:0|auth_pass/.test(r.text) || r.text.includes(CANARY_CONTENT) || r.text.includes(key.toString('latin1')) || r.text.includes(key.toString('hex'))) leaks.push(`LEAK ${r.status} ${prefix}${t}`);
        }
      }
    }
    console.log(`hostile HTTP: ${probes} traversal probes, ${leaks.length} problems`);
    expect(leaks, leaks.join("\n")).toEqual([]);
    expect((await raw('/loaders/ok.efi')).text).toContain('MZ loader'); // the root itself still serves
  }, 60_000);

  it('token edge cases: only an exact Bearer token passes', async () => {
    const cases: Array<[string[], number]> = [
      [[], 401], [['Authorization: Bearer'], 401], [['Authorization: Bearer  '], 401], [[`Authorization: Basic ${READ}`], 401],
      [[`Authorization: ${READ}`], 401], [[`Authorization: Bearer ${READ}x`], 401], [[`Authorization: Bearer ${READ.slice(1)}`], 401],
      [[`Authorization: Bearer ${'x'.repeat(8000)}`], 401], [[`Authorization: Bearer ${READ}\u0000`], 400], // Node's parser: a NUL in a header is a bad request
      [[`Authorization: Bearer ${READ}`], 200], [[`Authorization: bearer ${READ}`], 200],
    ];
    for (const [h, want] of cases) {
      const r = await raw('/api/leases', h);
      expect(r.status, h.join('|').slice(0, 60)).toBe(want);
      if (want !== 200) expect(r.text).not.toMatch(/^\[/m);
    }
  });

  it('a .zst rootfs on a host without zstd is a 500 naming zstd, and the server keeps serving', async () => {
    const path = process.env.PATH;
    const empty = join(dir, 'empty-bin');
    mkdirSync(empty, { recursive: true });
    process.env.PATH = empty;
    try {
      const r = await app.inject({ url: `/rootfs/${LB1}.tar.zst`, remoteAddress: '10.0.0.11' });
      expect(r.statusCode).toBe(500);
      expect(r.json()).toMatchObject({ code: 'E_NO_ZSTD', message: expect.stringMatching(/zstd.*\.tar\.gz/) });
    } finally {
      process.env.PATH = path;
    }
    const ok = await app.inject({ url: `/rootfs/${LB1}.tar.zst`, remoteAddress: '10.0.0.11' });
    expect(ok.statusCode).toBe(200);
    const z = spawnSync('zstd', ['-dc'], { input: ok.rawPayload });
    expect(z.status).toBe(0);
    writeFileSync(join(dir, 'lb1.tar'), z.stdout);
    expect(spawnSync('tar', ['-tf', join(dir, 'lb1.tar')], { encoding: 'utf8' }).stdout).toMatch(/etc\/hostname/);
    expect((await app.inject('/healthz')).statusCode).toBe(200);
  });
});
