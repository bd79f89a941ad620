/**
 * The discovery inbox over HTTP (fastify inject, source address per request) on real stores: the file
 * inbox and lease store in a temp data directory, the file profile editor on a copy of the profiles.
 * Bad reports (wrong source, malformed, oversized, 10,000 fake MACs) are refused or bounded and lose
 * nothing; adoption appends one line; rules adopt by themselves; the CLI talks to the same routes.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../../src/http/app.js';
import { InventoryStore } from '../../../src/inventory/watch.js';
import { defaultConfig } from '../../../src/config.js';
import { silentLogger } from '../../../src/log.js';
import { FileDiscoveredStore } from '../../../src/state/file/discovered.js';
import { openFileState } from '../../../src/state/file/index.js';
import type { State } from '../../../src/state/types.js';
import { main as cli } from '../../../src/cli.js';

const ROOT = resolve(import.meta.dirname, '../../..');
const dir = mkdtempSync(join(tmpdir(), 'rolecast-discovered-'));
const ADMIN = 'admin-token';
const READ = 'read-token';
const A1 = '52:54:00:aa:00:01';
const A2 = '52:54:00:aa:00:02';
const UUID_A = '4c4c4544-0001-4a10-8000-b2c04f000001';
let app: FastifyInstance;
let inv: InventoryStore;
let state: State;
let baseUrl = '';

const RULES = `
discovery:
  addresses: { start: 10.0.0.150, end: 10.0.0.159 }
  rules:
    - name: rack-auto
      match: { serial_prefix: AUTO-, nics: 1 }
      host: "auto{n}"
      role: test
      addresses: { start: 10.0.0.170, end: 10.0.0.179 }
      auto: true
`;

function report(serial: string, uuid: string, macs: string[], disks = 2): Record<string, unknown> {
  return {
    version: 1,
    system: { vendor: 'QEMU', product: 'Standard PC', serial, uuid },
    cpu: { model: 'QEMU Virtual CPU', sockets: 1, cores: 1, threads: 1 },
    memory_mib: 512,
    disks: [{ name: 'vda', bytes: 1073741824, serial: 'DISK-A', rotational: true }, { name: 'vdb', bytes: 2147483648, serial: 'DISK-B', rotational: true }].slice(0, disks),
    nics: macs.map((mac, i) => ({ name: `eth${i}`, mac, driver: 'virtio_net', speed_mbps: null, link: true, lldp: { chassis: '02:00:00:00:00:01', port: `tap${i}`, system: 'lab-switch' } })),
  };
}

const post = (mac: string, from: string, body: unknown, raw?: string) => app.inject({ method: 'POST', url: `/api/discovered/${mac}`, remoteAddress: from, headers: { 'content-type': 'application/json' }, payload: raw ?? JSON.stringify(body) });
const get = (url: string, token = READ, from = '127.0.0.1') => app.inject({ url, remoteAddress: from, headers: token ? { authorization: `Bearer ${token}` } : {} });
const adopt = (key: string, body: unknown, token = ADMIN) => app.inject({ method: 'POST', url: `/api/discovered/${key}/adopt`, headers: { authorization: `Bearer ${token}` }, payload: body as Record<string, string> });
const lease = (mac: string, ip: string) => state.leases.commit({ mac, ip, state: 'bound', expiresAt: new Date(Date.now() + 3_600_000).toISOString() });
const inbox = { list: () => state.discovered.list() };
const machines = () => readFileSync(join(dir, 'profiles/machines.yaml'), 'utf8');

async function runCli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((s) => { out += String(s); return true; });
  const e = vi.spyOn(process.stderr, 'write').mockImplementation((s) => { err += String(s); return true; });
  try {
    const code = await cli([...args, '--profiles', join(dir, 'profiles'), '--base-url', baseUrl]);
    return { code, out, err };
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}

beforeAll(async () => {
  cpSync(join(ROOT, 'test/fixtures/profiles'), join(dir, 'profiles'), { recursive: true });
  appendFileSync(join(dir, 'profiles/rolecast.yaml'), RULES);
  const cfg = { ...defaultConfig(), profilesDir: join(dir, 'profiles'), dataDir: join(dir, 'data'), imagesDir: join(dir, 'images'), address: '10.0.0.1' };
  cfg.http = { ...cfg.http, host: '127.0.0.1', port: 0, tokens: { admin: [ADMIN], read: [READ] } };
  inv = await InventoryStore.open(cfg.profilesDir, silentLogger());
  state = await openFileState(cfg.dataDir, cfg.profilesDir, silentLogger());
  app = await buildApp({ getInventory: () => inv.current(), config: cfg, logger: silentLogger(), state, reload: () => inv.reload(), discoveryMaxEntries: 6 });
  await app.listen({ host: '127.0.0.1', port: 0 });
  baseUrl = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
  process.env.ROLECAST_TOKEN = ADMIN;
  await lease(A1, '10.0.0.200');
  await lease(A2, '10.0.0.201');
});

afterAll(async () => {
  delete process.env.ROLECAST_TOKEN;
  await app.close();
  inv.close();
  await state.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('discovery inbox over HTTP', () => {
  it('accepts a report only from the address leased to that MAC', async () => {
    const wrong = await post(A1, '10.0.0.201', report('RC-0001', UUID_A, [A1, A2]));
    expect(wrong.statusCode).toBe(403);
    expect(wrong.json()).toMatchObject({ code: 'E_REPORT_SOURCE' });
    expect(inbox.list()).toHaveLength(0);
    const ok = await post(A1, '10.0.0.200', report('RC-0001', UUID_A, [A1, A2]));
    expect(ok.statusCode).toBe(202);
    expect(ok.json()).toEqual({ entry: A1, state: 'waiting' });
  });

  it('lists it with the exact facts; the box reads its own entry without a token, others need one', async () => {
    const list = (await get('/api/discovered')).json() as Array<Record<string, unknown>>;
    expect(list).toHaveLength(1);
    expect(list[0]).toMatchObject({ mac: A1, macs: [A1, A2], state: 'waiting', address: '10.0.0.200', facts: { system: { serial: 'RC-0001', uuid: UUID_A }, disks: [{ name: 'vda', serial: 'DISK-A' }, { name: 'vdb', serial: 'DISK-B' }] } });
    expect((await get(`/api/discovered/${A1}`, '', '10.0.0.200')).json()).toMatchObject({ state: 'waiting' });
    expect((await get(`/api/discovered/${A1}`, '', '10.0.0.99')).statusCode).toBe(401);
    expect((await get('/api/discovered', '')).statusCode).toBe(401);
  });

  it('the same box reporting from its second NIC stays one entry', async () => {
    const r = await post(A2, '10.0.0.201', report('RC-0001', UUID_A, [A1, A2]));
    expect(r.json()).toEqual({ entry: A1, state: 'waiting' });
    const list = (await get('/api/discovered')).json() as Array<Record<string, unknown>>;
    expect(list.map((x) => [x.mac, x.via, x.address])).toEqual([[A1, A2, '10.0.0.201']]);
  });

  it('malformed reports get 400 naming the field; oversized ones 413; the inbox keeps what it had', async () => {
    const before = readFileSync(join(dir, 'data/discovered.json'), 'utf8');
    const bad = await post(A1, '10.0.0.200', { ...report('RC-0001', UUID_A, [A1]), nics: [{ name: 'eth0', mac: 'not-a-mac' }] });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ code: 'E_BAD_REPORT', field: 'nics[0].mac', message: 'nics[0].mac: "not-a-mac" is not a MAC address' });
    const syntax = await post(A1, '10.0.0.200', undefined, '{"system": {');
    expect(syntax.statusCode).toBe(400);
    expect(syntax.json()).toMatchObject({ code: 'E_BAD_REPORT', field: '(body)' });
    const big = await post(A1, '10.0.0.200', undefined, JSON.stringify({ ...report('RC-0001', UUID_A, [A1]), pad: 'x'.repeat(70_000) }));
    expect(big.statusCode).toBe(413);
    expect(readFileSync(join(dir, 'data/discovered.json'), 'utf8')).toBe(before);
    expect(inbox.list()).toHaveLength(1);
  });

  it('10,000 reports for fake MACs from one address: all refused, memory bounded, nothing lost', async () => {
    const before = readFileSync(join(dir, 'data/discovered.json'), 'utf8');
    global.gc?.();
    const heap0 = process.memoryUsage().heapUsed;
    const body = JSON.stringify(report('FAKE', '11111111-2222-3333-4444-555555555555', ['02:00:00:00:00:01']));
    const codes = new Map<number, number>();
    for (let i = 0; i < 10_000; i++) {
      const mac = `02:00:00:${((i >> 16) & 255).toString(16).padStart(2, '0')}:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
      const r = await post(mac, '10.0.0.66', undefined, body);
      codes.set(r.statusCode, (codes.get(r.statusCode) ?? 0) + 1);
    }
    global.gc?.();
    const grown = process.memoryUsage().heapUsed - heap0;
    expect([...codes]).toEqual([[403, 10_000]]);
    expect(grown).toBeLessThan(64 * 2 ** 20);
    expect(readFileSync(join(dir, 'data/discovered.json'), 'utf8')).toBe(before);
  }, 120_000);

  it('the inbox is bounded: a new box beyond the limit is refused (503), none is evicted', async () => {
    for (let i = 0; i < 6; i++) await lease(`52:54:00:bb:00:0${i}`, `10.0.0.21${i}`);
    const codes: number[] = [];
    for (let i = 0; i < 6; i++) codes.push((await post(`52:54:00:bb:00:0${i}`, `10.0.0.21${i}`, report(`FILL-${i}`, `aaaaaaaa-0000-0000-0000-00000000000${i}`, [`52:54:00:bb:00:0${i}`]))).statusCode);
    expect(codes).toEqual([202, 202, 202, 202, 202, 503]);
    expect(inbox.list().map((r) => r.mac)).toContain(A1);
    for (let i = 0; i < 5; i++) expect((await app.inject({ method: 'DELETE', url: `/api/discovered/52:54:00:bb:00:0${i}`, headers: { authorization: `Bearer ${ADMIN}` } })).statusCode).toBe(200);
    expect(inbox.list()).toHaveLength(1);
  });

  it('adoption refuses a duplicate host, an address in use, an unknown role, a read token — and writes nothing', async () => {
    const text = machines();
    expect((await adopt(A1, { host: 'w101', role: 'test', ip: '10.0.0.150' })).json()).toMatchObject({ code: 'E_ADOPT_HOST', message: expect.stringContaining('host "w101" already exists') });
    expect((await adopt(A1, { host: 'w200', role: 'test', ip: '10.0.0.11' })).json()).toMatchObject({ code: 'E_ADOPT_ADDRESS', message: 'address 10.0.0.11 is in use by lb1' });
    // 10.0.0.210 is leased to another box (the box's own lease would do).
    expect((await adopt(A1, { host: 'w200', role: 'test', ip: '10.0.0.210' })).json()).toMatchObject({ code: 'E_ADOPT_ADDRESS', message: 'address 10.0.0.210 is leased to another machine right now' });
    const role = await adopt(A1, { host: 'w200', role: 'webb', ip: '10.0.0.150' });
    expect(role.statusCode).toBe(422);
    expect((await adopt(A1, { host: 'w200', role: 'test' }, READ)).statusCode).toBe(403);
    expect(machines()).toBe(text);
  });

  it('rolecast adopt appends ONE line (all NIC MACs, UUID), the rest of machines.yaml unchanged; the box sees "adopted"', async () => {
    const text = machines();
    const r = await runCli(['adopt', 'RC-0001', '--host', 'w200', '--role', 'test', '--ip', '10.0.0.150']);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const line = `  - { host: w200, mac: [${A2}, ${A1}], role: test, ip: 10.0.0.150, uuid: ${UUID_A} }   # discovered: serial RC-0001`;
    expect(r.out).toContain(line);
    expect(machines()).toBe(`${text}${line}\n`);
    expect(inv.current().byHost.get('w200')?.macs).toEqual([A2, A1]);
    expect((await get(`/api/discovered/${A2}`, '', '10.0.0.201')).json()).toMatchObject({ state: 'adopted', host: 'w200', address: '10.0.0.150' });
    const again = await runCli(['adopt', A1, '--host', 'w201', '--role', 'test', '--ip', '10.0.0.151']);
    expect(again.code).toBe(1);
    expect(again.err).toContain('already adopted as w200');
  });

  it('rolecast discovered shows the entry; --json is the API list', async () => {
    const t = await runCli(['discovered']);
    expect(t.out).toMatch(new RegExp(`^${A1}\\s+\\S+\\s+RC-0001\\s+${UUID_A}\\s+1x QEMU Virtual CPU\\s+512M\\s+vda:1G vdb:2G\\s+2\\s+eth0→lab-switch/tap0 eth1→lab-switch/tap1\\s+adopted as w200$`, 'm'));
    const j = JSON.parse((await runCli(['discovered', '--json'])).out) as unknown[];
    expect(j).toHaveLength(1);
  });

  it('a rule with auto: true adopts a matching box at once (host template, rule range)', async () => {
    const M = '52:54:00:cc:00:01';
    await lease(M, '10.0.0.220');
    const r = await post(M, '10.0.0.220', report('AUTO-7', 'cccccccc-0000-0000-0000-000000000001', [M]));
    expect(r.json()).toEqual({ entry: M, state: 'adopted', host: 'auto1' });
    expect(inv.current().byHost.get('auto1')).toMatchObject({ ip: '10.0.0.170', macs: [M], role: 'test' });
  });

  it('a known machine on a swapped NIC is "<host>, new MAC", not a new box', async () => {
    const N = '52:54:00:dd:00:09';
    await lease(N, '10.0.0.230');
    const r = await post(N, '10.0.0.230', report('RC-0001', UUID_A, [N]));
    expect(r.json()).toEqual({ entry: A1, state: 'known-machine-new-nic', host: 'w200' });
    expect((await runCli(['discovered'])).out).toMatch(/w200, new MAC/);
  });

  it('commission: boot-once discover, a report from the reserved address refreshes the facts, facts shows what changed', async () => {
    const C = '52:54:00:00:02:06'; // w106
    expect((await app.inject({ method: 'POST', url: '/api/machines/w106/commission', headers: { authorization: `Bearer ${ADMIN}` } })).json()).toEqual({ host: 'w106', bootOnce: 'discover' });
    expect(inv.current().byHost.get('w106')?.bootOnce).toBe('discover');
    const first = await post(C, '10.0.0.106', report('W106', 'eeeeeeee-0000-0000-0000-000000000106', [C, '52:54:00:00:12:06']));
    expect(first.json()).toEqual({ entry: C, state: 'adopted', host: 'w106' });
    await post(C, '10.0.0.106', report('W106', 'eeeeeeee-0000-0000-0000-000000000106', [C, '52:54:00:00:12:06'], 1));
    const f = await runCli(['facts', 'w106']);
    expect(f.code).toBe(0);
    expect(f.out).toMatch(/^changed since .*:\n {2}disk gone: vdb \(2\.0 GiB, serial DISK-B\)$/m);
    const j = JSON.parse((await runCli(['facts', 'w106', '--json'])).out) as { changes: string[] };
    expect(j.changes).toEqual(['disk gone: vdb (2.0 GiB, serial DISK-B)']);
  });

  it('rolecast forget drops an entry; the inbox file survives a restart of the store', async () => {
    expect((await runCli(['forget', 'W106'])).out).toBe('forgot 52:54:00:00:02:06\n');
    const reopened = await FileDiscoveredStore.open(join(dir, 'data'));
    expect(reopened.list().map((r) => r.mac).sort()).toEqual(inbox.list().map((r) => r.mac).sort());
    // A damaged inbox file stops the store with its path instead of being replaced by an empty inbox.
    const broken = join(dir, 'broken');
    cpSync(join(dir, 'data/discovered.json'), join(broken, 'discovered.json'));
    writeFileSync(join(broken, 'discovered.json'), readFileSync(join(broken, 'discovered.json'), 'utf8').slice(0, 40));
    await expect(FileDiscoveredStore.open(broken)).rejects.toThrow(/broken\/discovered\.json is unreadable .*fix or move it aside/);
  });
});
