/**
 * The native sendfile engine on real sockets (127.0.0.1): a plain net server writes an HTTP/1.1 head with
 * socket.write(cb) and the body through the engine; curl (spawned asynchronously: the server runs in this process)
 * and raw net clients fetch it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, randomFillSync } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addonPath, sendfileEngine, sendfileUnavailableReason, socketFd, type SendfileError } from '../../../src/native/sendfile.js';
import { commandExists, inCI, runAsync, waitFor } from '../../helpers/netns.js';

const engine = sendfileEngine();
if (!engine) {
  const reason = sendfileUnavailableReason();
  if (inCI) throw new Error(`sendfile engine unavailable under CI=true: ${reason}`);
  console.warn(`\n!!! SKIPPING native sendfile tests: ${reason}\n`);
}
if (engine && !commandExists('curl')) {
  if (inCI) throw new Error('curl missing');
  console.warn('\n!!! SKIPPING native sendfile tests: curl missing\n');
}

const MiB = 1024 * 1024;

interface Served {
  conn: number;
  path: string;
  fdsBefore: number;
  fdsAfter?: number;
  sent?: number;
  error?: SendfileError;
}

interface Server {
  port: number;
  served: Served[];
  /** Settles when the n-th response (1-based) has ended either way. */
  settled(n: number): Promise<Served>;
  timeoutMs: number;
  abortOnClose: boolean;
  close(): Promise<void>;
}

const fdCount = () => readdirSync('/proc/self/fd').length;
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function startServer(files: Record<string, { fd: number; size: number }>): Promise<Server> {
  const served: Served[] = [];
  const waiters: Array<{ n: number; resolve: (s: Served) => void }> = [];
  const notify = () => {
    for (const w of [...waiters]) {
      const s = served.filter((x) => x.sent !== undefined || x.error)[w.n - 1];
      if (s) { waiters.splice(waiters.indexOf(w), 1); w.resolve(s); }
    }
  };
  let conns = 0;
  const sockets = new Set<net.Socket>();
  const srv: Server = {
    port: 0, served, timeoutMs: 10_000, abortOnClose: true,
    settled: (n) => new Promise((resolve) => { waiters.push({ n, resolve }); notify(); }),
    close: () => new Promise((resolve) => { for (const s of sockets) s.destroy(); server.close(() => resolve()); }),
  };
  const server = net.createServer((socket) => {
    const conn = ++conns;
    sockets.add(socket);
    const ac = new AbortController();
    socket.on('close', () => { sockets.delete(socket); if (srv.abortOnClose) ac.abort(); });
    socket.on('error', () => {});
    let buf = Buffer.alloc(0);
    let busy = false;
    const next = () => {
      if (busy) return;
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = buf.subarray(0, end).toString('latin1');
      buf = buf.subarray(end + 4);
      const [, path = ''] = head.split('\r\n')[0]!.split(' ');
      const file = files[path];
      if (!file) { socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n'); return; }
      let offset = 0;
      let length = file.size;
      let status = '200 OK';
      const range = /^range: bytes=(\d+)-(\d+)$/im.exec(head);
      if (range) {
        offset = Number(range[1]);
        length = Number(range[2]) - offset + 1;
        status = '206 Partial Content';
      }
      busy = true;
      socket.write(`HTTP/1.1 ${status}\r\nContent-Length: ${length}\r\nContent-Type: application/octet-stream\r\n\r\n`, () => {
        const fd = socketFd(socket);
        const rec: Served = { conn, path, fdsBefore: fdCount() };
        served.push(rec);
        if (fd === undefined) { socket.destroy(); return; }
        engine!.send(fd, file.fd, offset, length, { timeoutMs: srv.timeoutMs, signal: ac.signal }).then(
          (sent) => { rec.fdsAfter = fdCount(); rec.sent = sent; busy = false; notify(); next(); },
          (err: SendfileError) => { rec.fdsAfter = fdCount(); rec.error = err; socket.destroy(); notify(); },
        );
      });
    };
    socket.on('data', (d: Buffer) => { buf = Buffer.concat([buf, d]); next(); });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  srv.port = (server.address() as net.AddressInfo).port;
  return srv;
}

/** curl's output piped into sha256sum (out of process: hashing here would slow the in-process server). */
async function curlSha(args: string[]): Promise<string> {
  const r = await runAsync('sh', ['-c', `curl -sS --fail ${args.map((a) => `'${a}'`).join(' ')} | sha256sum`], 120_000);
  expect(r.code, r.stderr).toBe(0);
  expect(r.stderr).toBe('');
  return r.stdout.split(' ')[0]!;
}

/** A raw client: sends one GET, then reads (or not) as told; resolves with the bytes received. */
function rawClient(port: number, path: string, opts: { destroyAfter?: number; paused?: boolean }): { done: Promise<number>; socket: net.Socket } {
  const socket = net.connect(port, '127.0.0.1');
  let got = 0;
  const done = new Promise<number>((resolve) => {
    socket.on('connect', () => {
      socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
      if (opts.paused) socket.pause();
    });
    socket.on('data', (d: Buffer) => {
      got += d.length;
      if (opts.destroyAfter !== undefined && got >= opts.destroyAfter) socket.destroy();
    });
    socket.on('error', () => {});
    socket.on('close', () => resolve(got));
  });
  return { done, socket };
}

describe.skipIf(!engine || !commandExists('curl'))('native sendfile engine', () => {
  let dir: string;
  let big: Buffer;
  let mid: Buffer;
  const fds: number[] = [];
  let srv: Server;

  beforeAll(async () => {
    dir = mkdtempSync(join(existsShm() ? '/dev/shm' : tmpdir(), 'rolecast-sendfile-'));
    big = randomFillSync(Buffer.allocUnsafe(100 * MiB));
    mid = randomFillSync(Buffer.allocUnsafe(20 * MiB));
    writeFileSync(join(dir, 'big.bin'), big);
    writeFileSync(join(dir, 'mid.bin'), mid);
    const open = (name: string, size: number) => { const fd = openSync(join(dir, name), 'r'); fds.push(fd); return { fd, size }; };
    srv = await startServer({ '/big': open('big.bin', big.length), '/mid': open('mid.bin', mid.length), '/short': { fd: fds[1]!, size: mid.length + 10 } });
  });
  afterAll(async () => {
    await srv?.close();
    for (const fd of fds) closeSync(fd);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('serves a 100 MB file byte-identical to curl', async () => {
    expect(await curlSha([`http://127.0.0.1:${srv.port}/big`])).toBe(sha256(big));
  });

  it('serves an offset/length slice (Range) identical to the file bytes', async () => {
    const from = 12_345_677;
    const to = 80 * MiB + 3;
    expect(await curlSha(['-r', `${from}-${to}`, `http://127.0.0.1:${srv.port}/big`])).toBe(sha256(big.subarray(from, to + 1)));
  });

  it('100 concurrent curl fetches of a 20 MB file are all identical', async () => {
    const want = sha256(mid);
    const got = await Promise.all(Array.from({ length: 100 }, () => curlSha([`http://127.0.0.1:${srv.port}/mid`])));
    expect(got.filter((h) => h !== want)).toEqual([]);
  });

  it('keep-alive: two responses on one connection', async () => {
    const before = srv.served.length;
    const url = `http://127.0.0.1:${srv.port}/mid`;
    expect(await curlSha([url, url])).toBe(sha256(Buffer.concat([mid, mid])));
    const two = srv.served.slice(before);
    expect(two.map((s) => s.sent)).toEqual([mid.length, mid.length]);
    expect(two[0]!.conn).toBe(two[1]!.conn);
  });

  it('a client hanging up mid-transfer: EPIPE/ECONNRESET, the process lives, the next request is served', async () => {
    srv.abortOnClose = false; // the engine itself must notice, not our close handler
    try {
      const n = srv.served.length + 1;
      const before = fdCount(); // this process holds both ends: count again once both have closed
      const client = rawClient(srv.port, '/big', { destroyAfter: MiB });
      const got = await client.done;
      expect(got).toBeGreaterThanOrEqual(MiB);
      const s = await srv.settled(n);
      expect(['EPIPE', 'ECONNRESET']).toContain(s.error?.code);
      expect(s.error!.bytesSent).toBeGreaterThan(0);
      expect(s.error!.bytesSent).toBeLessThan(big.length);
      await waitFor(() => fdCount() === before || undefined, 5000);
    } finally {
      srv.abortOnClose = true;
    }
    expect(await curlSha([`http://127.0.0.1:${srv.port}/mid`])).toBe(sha256(mid));
  });

  it('a client that stops reading: the inactivity timeout ends it with ETIMEDOUT and the dups are closed', async () => {
    srv.timeoutMs = 300;
    try {
      const n = srv.served.length + 1;
      const client = rawClient(srv.port, '/big', { paused: true });
      const t0 = Date.now();
      const s = await srv.settled(n);
      expect(s.error?.code).toBe('ETIMEDOUT');
      expect(s.error!.bytesSent).toBeGreaterThan(0); // it did make progress until the buffers filled
      expect(s.error!.bytesSent).toBeLessThan(big.length);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(300);
      expect(s.fdsAfter).toBe(s.fdsBefore);
      client.socket.destroy();
    } finally {
      srv.timeoutMs = 10_000;
    }
  });

  it('an AbortSignal cancels a stalled transfer with ECANCELED while the connection is still up', async () => {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
    const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    client.pause();
    const socket = await accepted;
    const before = fdCount();
    const ac = new AbortController();
    const sending = engine!.send(socketFd(socket)!, fds[0]!, 0, big.length, { signal: ac.signal });
    setTimeout(() => ac.abort(), 200);
    const err = (await sending.catch((e: SendfileError) => e)) as SendfileError;
    expect(err.code).toBe('ECANCELED');
    expect(err.bytesSent).toBeGreaterThan(0);
    expect(fdCount()).toBe(before);
    client.destroy();
    socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  });

  it('a file shorter than the announced length rejects with ENODATA', async () => {
    const n = srv.served.length + 1;
    const client = rawClient(srv.port, '/short', {});
    const s = await srv.settled(n);
    expect(s.error?.code).toBe('ENODATA');
    expect(s.error!.bytesSent).toBe(mid.length);
    await client.done;
  });

  it('rejects bad arguments and closed fds without touching the engine', async () => {
    await expect(engine!.send(-1, 0, 0, 1)).rejects.toThrow(RangeError);
    await expect(engine!.send(0, 0, 0.5, 1)).rejects.toThrow(RangeError);
    await expect(engine!.send(987_654, fds[0]!, 0, 1)).rejects.toMatchObject({ code: 'EBADF' });
    expect(await engine!.send(987_654, fds[0]!, 0, 0)).toBe(0);
    const ac = new AbortController();
    ac.abort();
    await expect(engine!.send(0, 0, 0, 1, { signal: ac.signal })).rejects.toMatchObject({ code: 'ECANCELED' });
  });

  it('the engine thread does not keep a process alive (idle, or after its jobs are done)', async () => {
    const script = `
      const b = require(${JSON.stringify(addonPath())});
      const net = require('node:net'), fs = require('node:fs');
      const fd = fs.openSync(${JSON.stringify(join(dir, 'mid.bin'))}, 'r');
      b.init((id, sent, errno) => { console.log('done', sent, errno); });
      const srv = net.createServer((s) => {
        b.submit(s._handle.fd, fd, 0, ${MiB}, 5000);
      }).listen(0, '127.0.0.1', () => {
        const c = net.connect(srv.address().port, '127.0.0.1');
        let got = 0;
        c.on('data', (d) => { got += d.length; if (got === ${MiB}) { c.destroy(); srv.close(); } });
      });`;
    const r = await runAsync(process.execPath, ['-e', script], 20_000);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(`done ${MiB} 0`);
  });
});

function existsShm(): boolean {
  try { return readdirSync('/dev/shm') !== undefined; } catch { return false; }
}
