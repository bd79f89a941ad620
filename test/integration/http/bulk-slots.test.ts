/**
 * http.bulkSlots on real connections (127.0.0.1, the native sendfile engine): with one slot, a second
 * download of a large image gets its head at once but no body byte while the first holds the slot; it
 * starts when the first ends, or when the first has held the slot for http.bulkHoldMs (a client that
 * stopped reading); a client that hangs up while queued leaves the queue. With http.bulkWhen: pressure
 * (the default) sends pass the slots while the kernel reports no TCP memory pressure, and wait once it
 * does; the flag is the test's own here (the real one is global to the host: tests must not push it).
 * Raw sockets, so a client can stop reading; every body is checked byte for byte.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { createHash, randomFillSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../../src/http/app.js';
import { openFileState } from '../../../src/state/file/index.js';
import type { State } from '../../../src/state/types.js';
import { InventoryStore } from '../../../src/inventory/watch.js';
import { defaultConfig } from '../../../src/config.js';
import { silentLogger } from '../../../src/log.js';
import { sendfileEngine, sendfileUnavailableReason } from '../../../src/native/sendfile.js';
import { BULK_MIN_BYTES } from '../../../src/http/bulk.js';
import { writeFixtureProfiles } from '../../helpers/profiles.js';
import { placeholderImages } from '../../helpers/images.js';
import { inCI, waitFor } from '../../helpers/netns.js';

const engine = sendfileEngine();
if (!engine) {
  if (inCI) throw new Error(`sendfile engine unavailable under CI=true: ${sendfileUnavailableReason()}`);
  console.warn(`\n!!! SKIPPING http.bulkSlots tests: ${sendfileUnavailableReason()}\n`);
}

const dir = mkdtempSync(join(tmpdir(), 'rolecast-bulk-'));
const IMAGE = Buffer.alloc(BULK_MIN_BYTES + (8 << 20));
randomFillSync(IMAGE);
const IMAGE_SHA = createHash('sha256').update(IMAGE).digest('hex');
const opened: Array<{ app: FastifyInstance; state: State; inv: InventoryStore }> = [];
const sockets: Socket[] = [];
afterAll(async () => {
  for (const s of sockets) s.destroy();
  for (const o of opened) { await o.app.close(); await o.state.close(); o.inv.close(); }
  rmSync(dir, { recursive: true, force: true });
});

/** `when`: http.bulkWhen (always, unless given; 'default' leaves the config's default). */
async function server(name: string, bulkSlots: number, bulkHoldMs: number, when: 'always' | 'default' | { tcpPressure: () => boolean } = 'always'): Promise<{ app: FastifyInstance; port: number }> {
  const base = join(dir, name);
  writeFixtureProfiles(join(base, 'profiles'));
  mkdirSync(join(base, 'images/build'), { recursive: true });
  writeFileSync(join(base, 'images/build/vmlinuz'), IMAGE); // the fixture's kernel image, large enough to be gated
  await placeholderImages(join(base, 'profiles'), join(base, 'images'));
  const cfg = { ...defaultConfig(), profilesDir: join(base, 'profiles'), dataDir: join(base, 'data'), imagesDir: join(base, 'images'), address: '127.0.0.1' };
  cfg.http = { ...cfg.http, bulkSlots, bulkHoldMs, ...(when === 'always' ? { bulkWhen: 'always' as const } : when === 'default' ? {} : { bulkWhen: 'pressure' as const }) };
  const tcpPressure = typeof when === 'object' ? when.tcpPressure : undefined;
  const inv = await InventoryStore.open(cfg.profilesDir, silentLogger());
  const state = await openFileState(cfg.dataDir, cfg.profilesDir, silentLogger());
  const app = await buildApp({ getInventory: () => inv.current(), config: cfg, logger: silentLogger(), state, ...(tcpPressure ? { tcpPressure } : {}) });
  opened.push({ app, state, inv });
  await app.listen({ host: '127.0.0.1', port: 0 });
  return { app, port: (app.server.address() as { port: number }).port };
}

/** rolecast_http_bulk_sends and _overran_total as the server reports them. */
async function bulkMetrics(app: FastifyInstance): Promise<{ sending: number; queued: number; overran: number }> {
  const text = (await app.inject('/metrics')).body;
  const num = (re: RegExp) => Number(re.exec(text)?.[1] ?? NaN);
  return { sending: num(/^rolecast_http_bulk_sends\{state="sending"\} (\d+)$/m), queued: num(/^rolecast_http_bulk_sends\{state="queued"\} (\d+)$/m), overran: num(/^rolecast_http_bulk_overran_total (\d+)$/m) };
}

interface Download {
  socket: Socket;
  /** Status line and headers, once they are in. */
  head?: string;
  /** Body bytes received so far. */
  body: number;
  /** The whole body's sha256 and length, when the response is complete (Content-Length reached). */
  done: Promise<{ sha: string; length: number }>;
}

/** GET /images/kernel on a raw socket; `paused` reads nothing until socket.resume(). */
function download(port: number, paused = false): Download {
  const socket = connect(port, '127.0.0.1');
  sockets.push(socket);
  if (paused) socket.pause();
  const d: Download = { socket, body: 0, done: undefined as never };
  d.done = new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    let want = -1;
    const hash = createHash('sha256');
    socket.on('data', (chunk: Buffer) => {
      if (d.head === undefined) {
        buf = Buffer.concat([buf, chunk]);
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        d.head = buf.subarray(0, end).toString('latin1');
        want = Number(/\r\ncontent-length: (\d+)/i.exec(d.head)?.[1] ?? -1);
        chunk = buf.subarray(end + 4);
      }
      d.body += chunk.length;
      hash.update(chunk);
      if (d.body === want) resolve({ sha: hash.digest('hex'), length: d.body });
    });
    socket.on('error', reject);
    socket.on('close', () => reject(new Error(`closed after ${d.body} body bytes (head: ${d.head?.split('\r\n')[0]})`)));
  });
  d.done.catch(() => undefined);
  socket.write('GET /images/kernel HTTP/1.1\r\nHost: test\r\n\r\n');
  return d;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A server with one slot held by `a`, a client that reads nothing, and `b` queued behind it. */
async function heldAndQueued(name: string): Promise<{ app: FastifyInstance; port: number; a: Download; b: Download }> {
  const { app, port } = await server(name, 1, 600_000);
  const a = download(port, true);
  await waitFor(async () => (await bulkMetrics(app)).sending === 1, 10_000);
  const b = download(port);
  await waitFor(async () => (await bulkMetrics(app)).queued === 1, 10_000);
  return { app, port, a, b };
}

/** Lets the stalled `a` read, then checks both bodies byte for byte and waits for an idle gate. */
async function finishBoth(app: FastifyInstance, a: Download, b: Download): Promise<void> {
  a.socket.resume();
  expect(await a.done).toEqual({ sha: IMAGE_SHA, length: IMAGE.length });
  expect(await b.done).toEqual({ sha: IMAGE_SHA, length: IMAGE.length });
  await waitFor(async () => { const m = await bulkMetrics(app); return m.sending === 0 && m.queued === 0; }, 10_000);
}

describe.skipIf(!engine)('http.bulkSlots', () => {
  it('one slot: the second download waits for the first (head at once, body after), both whole', async () => {
    const { app, a, b } = await heldAndQueued('one');
    await waitFor(() => b.head !== undefined, 10_000);
    expect(b.head).toMatch(/^HTTP\/1\.1 200/);
    await sleep(500);
    expect(b.body).toBe(0);
    await finishBoth(app, a, b);
    expect((await bulkMetrics(app)).overran).toBe(0);
  });

  it('a client that stops reading holds its slot only http.bulkHoldMs', async () => {
    const { app, port } = await server('hold', 1, 700);
    const a = download(port, true);
    await waitFor(async () => (await bulkMetrics(app)).sending === 1, 10_000);
    const started = Date.now();
    const b = download(port);
    expect(await b.done).toEqual({ sha: IMAGE_SHA, length: IMAGE.length });
    expect(Date.now() - started).toBeGreaterThanOrEqual(400); // it did wait its turn for a while
    expect(a.body).toBeLessThan(IMAGE.length); // the stalled one still has not got its image
    expect((await bulkMetrics(app)).overran).toBe(1);
    a.socket.resume(); // the overrun send goes on without a slot and completes
    expect(await a.done).toEqual({ sha: IMAGE_SHA, length: IMAGE.length });
  });

  it('a client that hangs up while queued leaves the queue; the next one gets the slot', async () => {
    const { app, port, a, b } = await heldAndQueued('gone');
    b.socket.destroy();
    await waitFor(async () => (await bulkMetrics(app)).queued === 0, 10_000);
    const c = download(port);
    await waitFor(async () => (await bulkMetrics(app)).queued === 1, 10_000);
    await finishBoth(app, a, c);
  });

  it('0 slots: no gate, two stalled clients do not hold up a third', async () => {
    const { app, port } = await server('off', 0, 600_000, 'default'); // the default bulkWhen (pressure) with no gate
    download(port, true);
    download(port, true);
    expect(await download(port).done).toEqual({ sha: IMAGE_SHA, length: IMAGE.length });
    expect(await bulkMetrics(app)).toEqual({ sending: 0, queued: 0, overran: 0 });
  });

  it('bulkWhen pressure: past the slot while the kernel has TCP memory, in turn once it is short', async () => {
    let pressure = false;
    const { app, port } = await server('pressure', 1, 600_000, { tcpPressure: () => pressure });
    const metric = async (name: string) => Number(new RegExp(`^${name} (\\d+)$`, 'm').exec((await app.inject('/metrics')).body)?.[1] ?? NaN);
    const a = download(port, true); // takes the one slot and reads nothing
    await waitFor(async () => (await bulkMetrics(app)).sending === 1, 10_000);
    expect(await download(port).done).toEqual({ sha: IMAGE_SHA, length: IMAGE.length }); // open: not held up by a
    expect(await metric('rolecast_tcp_memory_pressure')).toBe(0);
    pressure = true;
    const c = download(port);
    await waitFor(async () => (await bulkMetrics(app)).queued === 1, 10_000);
    expect(await metric('rolecast_tcp_memory_pressure')).toBe(1);
    expect(await metric('rolecast_http_bulk_closed_total')).toBe(1);
    await sleep(300);
    expect(c.body).toBe(0);
    pressure = false; // c is in line now: it goes when a slot frees, not when the kernel recovers
    await sleep(300);
    expect(c.body).toBe(0);
    await finishBoth(app, a, c);
  });
});
