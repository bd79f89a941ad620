/**
 * The boot-time secret path over real sockets (issue 16): every refusal and the success of
 * GET /secrets/<mac>, and signed phone-home, against `buildApp` listening on loopback. The fixture
 * profiles move to 127.0.10.0/24 (all of 127.0.0.0/8 is this host's), so a client can send from lb1's
 * own address (127.0.10.11) or another's, from a port below 1024 (root) or an ordinary one. Then the
 * real C client (images/initramfs/rolecast-boot.c, compiled as the initramfs build does) fetches,
 * signs and posts, as root and as an unprivileged user.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { chmodSync, cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { spawn, spawnSync } from 'node:child_process';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../../src/http/app.js';
import { openFileState } from '../../../src/state/file/index.js';
import type { State } from '../../../src/state/types.js';
import { InventoryStore } from '../../../src/inventory/watch.js';
import { defaultConfig } from '../../../src/config.js';
import { silentLogger } from '../../../src/log.js';
import { serverKey } from '../../../src/serverkey.js';
import { signEvent } from '../../../src/boot/token.js';
import { compileHelper } from '../../../src/images/discover-parts.js';
import { INITRAMFS_SRC } from '../../../src/images/initramfs.js';
import { bindLease, placeholderBootImages } from '../../helpers/boot-secrets.js';
import { describeSystem } from '../../helpers/netns.js';

const ROOT = resolve(import.meta.dirname, '../../..');
const dir = mkdtempSync(join(tmpdir(), 'rolecast-secret-path-'));
const SERVER = '127.0.10.1';
const LB1 = { mac: '52:54:00:00:01:01', ip: '127.0.10.11' };
const LB2 = { mac: '52:54:00:00:01:02', ip: '127.0.10.12' };
const W102 = { mac: '52:54:00:00:02:02', ip: '127.0.10.102' };
const WINDOW_S = 4;
let app: FastifyInstance;
let inv: InventoryStore;
let state: State;
let port: number;
let bin: string;

interface Answer { status: number; headers: Record<string, string>; body: Buffer }

/** One HTTP/1.0 exchange over a socket bound to (from, localPort): what the C client does, in Node. */
function request(from: string, localPort: number | 'privileged' | 'any', method: string, path: string, headers: Record<string, string> = {}, body = ''): Promise<Answer> {
  const pick = () => (localPort === 'privileged' ? 600 + Math.floor(Math.random() * 424) : localPort === 'any' ? 0 : localPort);
  const attempt = (tries: number): Promise<Answer> => new Promise((ok, fail) => {
    const s = connect({ host: SERVER, port, localAddress: from, localPort: pick() });
    const chunks: Buffer[] = [];
    s.on('connect', () => {
      const head = Object.entries({ host: `${SERVER}:${port}`, ...headers, ...(body ? { 'content-length': String(Buffer.byteLength(body)) } : {}) }).map(([k, v]) => `${k}: ${v}\r\n`).join('');
      // No half-close: Node's HTTP server drops a request whose client ends first. HTTP/1.0: it closes.
      s.write(`${method} ${path} HTTP/1.0\r\n${head}\r\n${body}`);
    });
    s.on('data', (c: Buffer) => chunks.push(c));
    // A port in use, or in TIME_WAIT towards the server: another one (as the C client does).
    s.on('error', (err: NodeJS.ErrnoException) => ((err.code === 'EADDRINUSE' || err.code === 'EADDRNOTAVAIL') && tries > 0 ? attempt(tries - 1).then(ok, fail) : fail(err)));
    s.on('end', () => {
      const all = Buffer.concat(chunks);
      const split = all.indexOf('\r\n\r\n');
      const lines = all.subarray(0, split).toString('latin1').split('\r\n');
      const hdrs = Object.fromEntries(lines.slice(1).map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
      ok({ status: Number(lines[0]!.split(' ')[1]), headers: hdrs, body: all.subarray(split + 4) });
    });
  });
  return attempt(20);
}

/** The token in the machine's iPXE script, fetched from `from` (undefined when the script has none). */
async function scriptFrom(mac: string, from: string): Promise<string | undefined> {
  const r = await request(from, 'any', 'GET', `/boot/${mac}.ipxe`);
  expect(r.status).toBe(200);
  return /rolecast\.token=(\S+)/.exec(r.body.toString())?.[1];
}

const secrets = (m: { mac: string }, from: string, lport: number | 'privileged' | 'any', token?: string) =>
  request(from, lport, 'GET', `/secrets/${m.mac}`, token ? { authorization: `Bearer ${token}` } : {});

function tarList(buf: Buffer): string[] {
  return spawnSync('tar', ['-t'], { input: buf, encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
}

/** A refusal: its status and code, an http-secret-denied event naming the code, and no secret byte. */
async function refused(r: Answer, status: number, code: string, mac: string): Promise<void> {
  expect(r.status, r.body.toString()).toBe(status);
  expect(JSON.parse(r.body.toString())).toMatchObject({ code });
  expect(r.body.includes('auth_pass')).toBe(false);
  const last = state.events.timeline(mac).filter((e) => e.stage === 'http-secret-denied').at(-1);
  expect(last?.detail).toMatch(new RegExp(`^${code}: `));
}

/** The C client as a child process (asynchronous: the server answers from this same event loop). */
function runClient(args: string[], input?: string, asUser?: string): Promise<{ code: number | null; out: Buffer; err: string }> {
  const cmd = asUser ? 'setpriv' : join(bin, 'rolecast-boot');
  const full = asUser ? [`--reuid=${asUser}`, `--regid=${asUser}`, '--clear-groups', join(bin, 'rolecast-boot'), ...args] : args;
  return new Promise((ok, fail) => {
    const c = spawn(cmd, full, { timeout: 20_000 });
    const out: Buffer[] = [];
    let err = '';
    c.stdout.on('data', (d: Buffer) => out.push(d));
    c.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    c.on('error', fail);
    c.on('close', (code) => ok({ code, out: Buffer.concat(out), err }));
    c.stdin.end(input ?? '');
  });
}

describeSystem('the secret bundle over real sockets', ['setpriv', 'gcc'], () => {
  beforeAll(async () => {
    cpSync(join(ROOT, 'test/fixtures/profiles'), join(dir, 'profiles'), { recursive: true });
    for (const f of ['rolecast.yaml', 'machines.yaml', 'roles/lb.yaml', 'roles/db.yaml']) {
      const p = join(dir, 'profiles', f);
      writeFileSync(p, readFileSync(p, 'utf8').replace(/\b10\.0\.0\./g, '127.0.10.'));
    }
    mkdirSync(join(dir, 'base/etc'), { recursive: true });
    writeFileSync(join(dir, 'base/etc/motd'), 'base\n');
    mkdirSync(join(dir, 'images/build/rootfs'), { recursive: true });
    for (const r of ['lb', 'web']) spawnSync('tar', ['-C', join(dir, 'base'), '-cf', join(dir, `images/build/rootfs/${r}.tar`), '.']);
    placeholderBootImages(join(dir, 'images'));
    const cfg = { ...defaultConfig(), profilesDir: join(dir, 'profiles'), dataDir: join(dir, 'data'), imagesDir: join(dir, 'images'), address: SERVER };
    cfg.secrets = { windowS: WINDOW_S, requirePrivilegedPort: true };
    inv = await InventoryStore.open(cfg.profilesDir, silentLogger());
    state = await openFileState(cfg.dataDir, cfg.profilesDir, silentLogger());
    app = await buildApp({ getInventory: () => inv.current(), config: cfg, logger: silentLogger(), state, serverKey: await serverKey(cfg.dataDir) });
    port = Number(new URL(await app.listen({ host: SERVER, port: 0 })).port);
    // The machines' own DHCP: bound leases at their reserved addresses (w102's where the kernel puts the
    // C client's source on loopback: it chooses no source address, as in the initramfs).
    for (const m of [LB1, LB2]) await bindLease(state, m.mac, m.ip);
    await bindLease(state, W102.mac, '127.0.0.1');
    const c = compileHelper(INITRAMFS_SRC, 'rolecast-boot');
    expect(c.warning).toBeUndefined();
    bin = join(dir, 'bin');
    mkdirSync(bin, { mode: 0o755 });
    chmodSync(dir, 0o711); // the unprivileged run must reach the binary
    writeFileSync(join(bin, 'rolecast-boot'), c.binary!, { mode: 0o755 });
  }, 60_000);
  afterAll(async () => { await app?.close(); await state?.close(); inv?.close(); rmSync(dir, { recursive: true, force: true }); });

  it('a script to the machine\'s own address carries a token; to any other address none', async () => {
    expect(await scriptFrom(LB1.mac, LB1.ip)).toMatch(/^[0-9a-z]+\.[A-Za-z0-9_-]{22}$/);
    expect(await scriptFrom(LB1.mac, '127.0.10.99')).toBeUndefined();
    expect(await scriptFrom(LB1.mac, LB2.ip)).toBeUndefined();
  });

  it('refuses: an ordinary source port, another address, no token, a wrong or another MAC\'s token', async () => {
    const token = (await scriptFrom(LB1.mac, LB1.ip))!;
    await refused(await secrets(LB1, LB1.ip, 'any', token), 403, 'E_SECRET_PORT', LB1.mac);
    await refused(await secrets(LB1, LB2.ip, 'privileged', token), 403, 'E_SECRET', LB1.mac);
    await refused(await secrets(LB1, '127.0.10.99', 'privileged', token), 403, 'E_SECRET', LB1.mac);
    await refused(await secrets(LB1, LB1.ip, 'privileged'), 401, 'E_BOOT_TOKEN', LB1.mac);
    const forged = `${token.slice(0, -1)}${token.endsWith('A') ? 'B' : 'A'}`;
    await refused(await secrets(LB1, LB1.ip, 'privileged', forged), 401, 'E_BOOT_TOKEN', LB1.mac);
    const lb2Token = (await scriptFrom(LB2.mac, LB2.ip))!;
    await refused(await secrets(LB1, LB1.ip, 'privileged', lb2Token), 401, 'E_BOOT_TOKEN', LB1.mac);
    // None of those spent it: the machine itself still gets its bundle.
    expect((await secrets(LB1, LB1.ip, 'privileged', token)).status).toBe(200);
  });

  it('the machine gets its bundle once: secret files at their paths, modes kept, the boot key; then spent', async () => {
    const token = (await scriptFrom(LB1.mac, LB1.ip))!;
    const r = await secrets(LB1, LB1.ip, 'privileged', token);
    expect(r.status, r.body.toString()).toBe(200);
    expect(r.headers['cache-control']).toBe('no-store');
    expect(tarList(r.body)).toEqual(expect.arrayContaining(['rolecast-boot.key', 'etc/keepalived/keepalived.conf', 'etc/rolecast/capture.key']));
    const out = join(dir, 'lb1-root');
    mkdirSync(out);
    expect(spawnSync('busybox', ['tar', '-xf', '-', '-C', out], { input: r.body }).status).toBe(0);
    expect(readFileSync(join(out, 'etc/keepalived/keepalived.conf'), 'utf8')).toMatch(/auth_pass/);
    expect(spawnSync('stat', ['-c', '%a', join(out, 'etc/keepalived/keepalived.conf'), join(out, 'etc/rolecast/capture.key')], { encoding: 'utf8' }).stdout.split('\n').slice(0, 2)).toEqual(['600', '600']);
    expect(readFileSync(join(out, 'rolecast-boot.key'), 'utf8')).toMatch(/^[0-9a-f]{64}\n$/);
    expect(state.events.timeline(LB1.mac).at(-1)).toMatchObject({ stage: 'http-secrets', address: LB1.ip });
    await refused(await secrets(LB1, LB1.ip, 'privileged', token), 403, 'E_BOOT_TOKEN_SPENT', LB1.mac);
  });

  it('a newer script supersedes the token; two fetches racing with one token: exactly one wins', async () => {
    const old = (await scriptFrom(LB1.mac, LB1.ip))!;
    const token = (await scriptFrom(LB1.mac, LB1.ip))!;
    expect(token).not.toBe(old);
    await refused(await secrets(LB1, LB1.ip, 'privileged', old), 403, 'E_BOOT_TOKEN_SPENT', LB1.mac);
    const both = await Promise.all([1, 2, 3].map(() => secrets(LB1, LB1.ip, 'privileged', token)));
    expect(both.map((a) => a.status).sort()).toEqual([200, 403, 403]);
  });

  it('outside the window the token is refused', async () => {
    const token = (await scriptFrom(LB1.mac, LB1.ip))!;
    await new Promise((ok) => setTimeout(ok, WINDOW_S * 1000 + 300));
    await refused(await secrets(LB1, LB1.ip, 'privileged', token), 403, 'E_BOOT_TOKEN_EXPIRED', LB1.mac);
  }, 15_000);

  it('phone-home: signed with the boot key is verified, unsigned is an unverified claim, a wrong or stale signature is refused', async () => {
    const token = (await scriptFrom(LB1.mac, LB1.ip))!;
    const bundle = await secrets(LB1, LB1.ip, 'privileged', token);
    const key = spawnSync('tar', ['-xOf', '-', 'rolecast-boot.key'], { input: bundle.body, encoding: 'utf8' }).stdout.trim();
    const boot = token.split('.')[0]!;
    const post = (body: string, headers: Record<string, string>) => request(LB1.ip, 'any', 'POST', `/api/machines/${LB1.mac}/events`, { 'content-type': 'application/json', ...headers }, body);
    const body = JSON.stringify({ stage: 'booted', detail: 'signed' });
    const ok = await post(body, { 'x-rolecast-boot': boot, 'x-rolecast-signature': signEvent(key, body) });
    expect([ok.status, JSON.parse(ok.body.toString())]).toEqual([202, { ok: true, verified: true }]);
    expect(state.events.last(LB1.mac)).toMatchObject({ stage: 'booted', detail: 'signed', verified: true });
    const claim = await request('127.0.10.99', 'any', 'POST', `/api/machines/${LB1.mac}/events`, { 'content-type': 'application/json' }, JSON.stringify({ stage: 'failed', detail: 'forged' }));
    expect(claim.status).toBe(202);
    expect(state.events.last(LB1.mac)).toMatchObject({ stage: 'failed', verified: false, address: '127.0.10.99' });
    const n = state.events.timeline(LB1.mac).length;
    const other = JSON.stringify({ stage: 'booted', detail: 'tampered' });
    for (const h of [{ 'x-rolecast-boot': boot, 'x-rolecast-signature': signEvent(key, body) } as Record<string, string>, { 'x-rolecast-boot': boot, 'x-rolecast-signature': 'f'.repeat(64) }, { 'x-rolecast-boot': boot }]) {
      const r = await post(other, h);
      expect(r.status).toBe(401);
      expect(JSON.parse(r.body.toString())).toMatchObject({ code: 'E_EVENT_SIGNATURE' });
    }
    await scriptFrom(LB1.mac, LB1.ip); // a new boot: the old key signs nothing any more
    expect((await post(body, { 'x-rolecast-boot': boot, 'x-rolecast-signature': signEvent(key, body) })).status).toBe(401);
    expect(state.events.timeline(LB1.mac).length).toBe(n + 1); // only the new script's event
  });

  it('the C client: fetches from a port below 1024 as root, signs as the server checks, refused as a user', async () => {
    const url = `http://${SERVER}:${port}`;
    let token = (await scriptFrom(W102.mac, '127.0.0.1'))!;
    expect(token).toBeDefined();
    const asNobody = await runClient(['get', `${url}/secrets/${W102.mac}`, token], undefined, '65534');
    expect(asNobody.code, asNobody.err).toBe(1);
    expect(asNobody.err).toMatch(/403[\s\S]*E_SECRET_PORT/);
    const wrong = await runClient(['get', `${url}/secrets/${W102.mac}`, `${token}x`]);
    expect([wrong.code, wrong.err]).toEqual([1, expect.stringMatching(/401[\s\S]*E_BOOT_TOKEN/)]);
    const got = await runClient(['get', `${url}/secrets/${W102.mac}`, token]);
    expect(got.code, got.err).toBe(0);
    expect(tarList(got.out)).toEqual(expect.arrayContaining(['rolecast-boot.key', 'etc/rolecast/capture.key']));
    expect((await runClient(['get', `${url}/secrets/${W102.mac}`, token])).err).toMatch(/E_BOOT_TOKEN_SPENT/);
    const keyFile = join(dir, 'w102.key');
    writeFileSync(keyFile, spawnSync('tar', ['-xOf', '-', 'rolecast-boot.key'], { input: got.out }).stdout, { mode: 0o600 });
    const body = '{"stage":"initramfs","detail":"dhcp ip=127.0.0.1"}';
    expect((await runClient(['sign', keyFile], body)).out.toString().trim()).toBe(signEvent(readFileSync(keyFile, 'utf8').trim(), body));
    const posted = await runClient(['post', `${url}/api/machines/${W102.mac}/events`, keyFile, token.split('.')[0]!], body);
    expect(posted.code, posted.err).toBe(0);
    expect(state.events.last(W102.mac)).toMatchObject({ stage: 'initramfs', verified: true });
    token = (await scriptFrom(W102.mac, '127.0.0.1'))!;
    expect((await runClient(['post', `${url}/api/machines/${W102.mac}/events`, keyFile, 'zz'], body)).err).toMatch(/401[\s\S]*E_EVENT_SIGNATURE/);
  }, 60_000);
});
