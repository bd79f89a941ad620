/**
 * Sending a body made of segments (file byte ranges and buffers) with HTTP's conditional and range
 * semantics (RFC 9110 §13, §14): HEAD, ETag + If-None-Match (304), Last-Modified + If-Modified-Since,
 * a single byte Range (206, or 416 when unsatisfiable), If-Range. Multiple ranges are answered with the
 * whole body (RFC 9110 allows ignoring Range). Images are one file segment; a composed rootfs is the
 * base image's ranges plus the generated entries — both go through here.
 */
import type { Stats } from 'node:fs';
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import { sendfileEngine, socketFd, type SendfileEngine } from '../native/sendfile.js';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { acquireVersion, segmentStream, sliceSegments, type Segment } from '../rootfs/compose.js';
import type { SharedFile } from '../fsutil.js';
import type { BulkGate, BulkTicket } from './bulk.js';

export interface Body {
  segments: readonly Segment[];
  length: number;
  etag: string;
  type: string;
  lastModified?: Date;
  cacheControl?: string;
  /** Send file segments with sendfile(2) when the native engine is built (see src/native/sendfile.ts). */
  zeroCopy?: boolean;
  /** Large zero-copy sends take a turn here (http.bulkSlots; src/http/bulk.ts). */
  gate?: BulkGate;
}

/**
 * A whole file as a body: one segment pinned to this version of the file, and a strong validator from
 * its identity (size, mtime, inode), so If-Range (resume) works as well as If-None-Match.
 */
export function fileBody(path: string, st: Stats): Body {
  return {
    segments: [{ kind: 'file', path, start: 0, end: st.size, version: { ino: st.ino, size: st.size, mtimeMs: st.mtimeMs } }],
    length: st.size,
    etag: `"${st.size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}-${st.ino.toString(16)}"`,
    type: 'application/octet-stream',
    lastModified: st.mtime,
  };
}

/** Parse a single "bytes=" range against a length; 'none' to send everything, 'bad' for 416. */
export function parseRange(header: string | undefined, length: number): { start: number; end: number } | 'none' | 'bad' {
  if (!header) return 'none';
  const m = /^\s*bytes\s*=\s*(.*)$/i.exec(header);
  if (!m) return 'none'; // another unit: ignore the header
  const specs = m[1]!.split(',').map((s) => s.trim()).filter(Boolean);
  if (specs.length !== 1) return 'none';
  const r = /^(\d*)-(\d*)$/.exec(specs[0]!);
  if (!r || (r[1] === '' && r[2] === '')) return 'none';
  if (r[1] === '') {
    const n = Number(r[2]);
    if (n === 0) return 'bad';
    return { start: Math.max(0, length - n), end: length };
  }
  const start = Number(r[1]);
  const last = r[2] === '' ? length - 1 : Math.min(Number(r[2]), length - 1);
  if (start >= length || last < start) return 'bad';
  return { start, end: last + 1 };
}

/** If-None-Match semantics: `*`, or any listed tag equal under weak comparison. */
export function etagMatches(header: string, etag: string): boolean {
  if (header.trim() === '*') return true;
  const bare = etag.replace(/^W\//, '');
  return header.split(',').some((t) => t.trim().replace(/^W\//, '') === bare);
}

/**
 * A send that makes no progress for this long ends. Longer than TCP's longest retransmission / window-probe
 * interval (TCP_RTO_MAX, 120 s): a connection backing off on a congested network recovers instead of being
 * cut. At 60 s (nginx's send_timeout too) a 300-machine storm lost 1-3 rootfs downloads per run on either
 * side (bench:storm, the box's TCP memory past its pressure mark); a firmware that loses its rootfs reboots.
 */
const IDLE_TIMEOUT_MS = 180_000;

function drained(socket: Socket): Promise<void> {
  if (socket.writableLength === 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const done = (err?: Error) => { socket.off('drain', ok); socket.off('close', closed); if (err) reject(err); else resolve(); };
    const ok = () => { if (socket.writableLength === 0) done(); };
    const closed = () => done(Object.assign(new Error('client closed the connection'), { code: 'ECONNRESET' }));
    socket.on('drain', ok);
    socket.once('close', closed);
  });
}

/**
 * The body through the native sendfile engine: the head and buffer segments go through Node's own
 * response (so its keep-alive bookkeeping stays right), file ranges go kernel to kernel once Node's write
 * queue for the socket is empty. Any failure ends the connection: the client sees a short body, never
 * bytes from somewhere else.
 */
async function sendZeroCopy(req: FastifyRequest, reply: FastifyReply, engine: SendfileEngine, fd: number, segments: readonly Segment[], gate: BulkGate | undefined): Promise<void> {
  reply.hijack();
  let ticket: BulkTicket | undefined;
  const res = reply.raw;
  const socket = req.socket;
  const abort = new AbortController();
  const onClose = () => abort.abort();
  socket.once('close', onClose);
  const handles = new Map<string, SharedFile>(); // shared with other responses (acquireVersion)
  try {
    res.writeHead(reply.statusCode, reply.getHeaders() as Record<string, string | string[] | number>);
    res.flushHeaders();
    // The head is out (the client knows it is answered); the body waits for a bulk slot.
    if (gate) ticket = await gate.acquire(abort.signal);
    for (const seg of segments) {
      if (seg.kind === 'buffer') {
        if (seg.data.length) res.write(seg.data);
        continue;
      }
      let h = handles.get(seg.path);
      if (!h) { h = await acquireVersion(seg); handles.set(seg.path, h); }
      await drained(socket);
      await engine.send(fd, h.fh.fd, seg.start, seg.end - seg.start, { timeoutMs: IDLE_TIMEOUT_MS, signal: abort.signal });
    }
    res.end();
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'EPIPE' || code === 'ECONNRESET' || code === 'ECANCELED') req.log.debug({ err }, 'client went away during a zero-copy send');
    else req.log.warn({ err, url: req.url }, 'zero-copy send failed');
    socket.destroy();
  } finally {
    ticket?.release();
    socket.off('close', onClose);
    for (const h of handles.values()) h.release();
  }
}

export function sendBody(req: FastifyRequest, reply: FastifyReply, body: Body): FastifyReply {
  reply.header('etag', body.etag).header('accept-ranges', 'bytes');
  if (body.cacheControl) reply.header('cache-control', body.cacheControl);
  if (body.lastModified) reply.header('last-modified', body.lastModified.toUTCString());
  const inm = req.headers['if-none-match'];
  if (inm !== undefined ? etagMatches(inm, body.etag)
    : body.lastModified && req.headers['if-modified-since'] && Math.floor(body.lastModified.getTime() / 1000) <= Math.floor(Date.parse(req.headers['if-modified-since']) / 1000)) {
    return reply.code(304).send();
  }
  let range = parseRange(req.headers.range, body.length);
  const ifRangeHeader = req.headers['if-range'];
  const ifRange = Array.isArray(ifRangeHeader) ? ifRangeHeader[0] : ifRangeHeader;
  if (ifRange !== undefined && range !== 'none') {
    const fresh = ifRange.startsWith('"') || ifRange.startsWith('W/') ? ifRange.trim() === body.etag && !body.etag.startsWith('W/')
      : body.lastModified !== undefined && Date.parse(ifRange) === Math.floor(body.lastModified.getTime() / 1000) * 1000;
    if (!fresh) range = 'none';
  }
  if (range === 'bad') {
    return reply.code(416).header('content-range', `bytes */${body.length}`).type('application/json')
      .send({ code: 'E_RANGE', message: `${req.headers.range} is outside 0-${body.length - 1}` });
  }
  let segments = body.segments;
  let length = body.length;
  if (range !== 'none') {
    segments = sliceSegments(body.segments, range.start, range.end);
    length = range.end - range.start;
    reply.code(206).header('content-range', `bytes ${range.start}-${range.end - 1}/${body.length}`);
  }
  reply.type(body.type).header('content-length', String(length));
  if (req.method !== 'HEAD' && body.zeroCopy) {
    const engine = sendfileEngine();
    const fd = engine ? socketFd(req.socket) : undefined;
    // Only when this response owns the socket outright (no pipelined response queued before it).
    if (engine && fd !== undefined && reply.raw.socket === req.socket && req.socket.writableLength === 0) {
      void sendZeroCopy(req, reply, engine, fd, segments, body.gate?.gates(length) ? body.gate : undefined);
      return reply;
    }
  }
  // HEAD: fastify's HEAD route keeps our Content-Length only for a stream payload (it drains the stream),
  // so hand it an empty one rather than the file.
  if (req.method === 'HEAD') return reply.send(Readable.from([]));
  return reply.send(segmentStream(segments));
}
