/**
 * GET /rootfs/<mac>.tar(.gz|.zst) and /files/<mac>/<path>: the machine's generated files (alone or
 * merged into its role's base image). Secret files go only to the address rolecast leased or reserved
 * for that MAC: anyone else on the provisioning network gets 403 (and the attempt is a boot event).
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createGzip } from 'node:zlib';
import { isAbsolute, join } from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Inventory } from '../inventory/types.js';
import type { LeaseView } from '../leases.js';
import type { EventSink } from '../events/types.js';
import type { RenderContext } from '../render/types.js';
import { normaliseMac } from '../boot/facts.js';
import { resolveMachine } from '../inventory/resolve.js';
import { machineContentHash, renderMachineFiles } from '../render/index.js';
import { planRootfs, segmentStream } from '../rootfs/compose.js';
import { TarFormatError } from '../rootfs/tarindex.js';
import { etagMatches, sendBody } from './send.js';
import { pathParams, sourceAddress } from './common.js';
import type { Readable } from 'node:stream';
import { fileSha256, rootfsEtag } from '../rootfs/etag.js';
import { readServed, writeServed, type ServedRecord } from '../served.js';
import { serverKey } from '../serverkey.js';
import { publishedHash } from './machines.js';

export interface RootfsDeps {
  getInventory: () => Inventory;
  ctx: RenderContext;
  imagesDir: string;
  dataDir: string;
  zeroCopy?: boolean;
  leases?: LeaseView;
  events: EventSink;
}


/**
 * Node 20's zlib has no zstd: the zstd tool compresses the stream. Started before the response, so a
 * host without it answers with an error instead of dying on the child's unhandled 'error' event.
 */
function startZstd(): Promise<ChildProcessWithoutNullStreams | Error> {
  const z = spawn('zstd', ['-q', '-c', '-3'], { stdio: 'pipe' });
  z.stderr.resume(); // unread, it would fill and stall zstd
  z.stdin.on('error', () => undefined); // EPIPE if zstd dies early: the response ends with its error
  return new Promise((ok) => { z.once('spawn', () => ok(z)); z.once('error', ok); });
}

export function registerRootfs(app: FastifyInstance, deps: RootfsDeps): void {
  // What each machine was last served: read from the data directory once, then kept here and written
  // through (one write at a time) after each rootfs response — this server is its only writer.
  let served: ServedRecord | undefined;
  let servedWrite: Promise<void> = Promise.resolve();
  const fail = (reply: FastifyReply, status: number, code: string, message: string) => reply.code(status).send({ code, message });

  function machineFor(macText: string, reply: FastifyReply) {
    const mac = normaliseMac(macText);
    const inv = deps.getInventory();
    const m = mac ? inv.byMac.get(mac) : undefined;
    if (!mac || !m) { fail(reply, 404, 'E_UNKNOWN_MACHINE', `no machine with MAC ${macText}`); return undefined; }
    const rm = resolveMachine(inv, m);
    return { mac, inv, rm, files: renderMachineFiles(rm, inv, deps.ctx) };
  }

  /** May this request see this machine's secrets? Only from its own leased or reserved address. */
  function allowed(req: FastifyRequest, mac: string, reserved: string): boolean {
    const from = sourceAddress(req);
    return from === reserved || from === deps.leases?.addressOf(mac);
  }

  app.get<{ Params: { file: string } }>('/rootfs/:file', { schema: { params: pathParams('file') } }, async (req, reply) => {
    const m = /^(.+?)\.(tar|tar\.gz|tar\.zst)$/.exec(req.params.file);
    if (!m) return fail(reply, 404, 'E_NOT_FOUND', `no rootfs ${req.params.file}`);
    const found = machineFor(m[1]!, reply);
    if (!found) return reply;
    const { mac, inv, rm, files } = found;
    const host = rm.machine.host;
    if (files.some((f) => f.secret) && !allowed(req, mac, rm.machine.ip)) {
      req.log.warn({ mac, host, from: sourceAddress(req) }, 'rootfs with secrets refused: not the machine\'s address');
      deps.events.emit({ mac, host, stage: 'http-secret-denied', address: sourceAddress(req), detail: req.url });
      return fail(reply, 403, 'E_SECRET', `${host}'s rootfs holds secrets and goes only to ${host}'s own address`);
    }
    const image = rm.role.rootfs ? inv.images[rm.role.rootfs] : undefined;
    const basePath = image ? (isAbsolute(image.path) ? image.path : join(deps.imagesDir, image.path)) : undefined;
    let baseSha: string | undefined;
    try {
      baseSha = basePath ? await fileSha256(basePath) : undefined;
    } catch {
      return fail(reply, 404, 'E_NO_IMAGE', `rootfs image ${basePath} for role ${rm.role.name} is missing (rolecast images list)`);
    }
    const hash = machineContentHash(files);
    const etag = rootfsEtag(baseSha, hash, m[2]!);
    let plan;
    try {
      plan = await planRootfs({ basePath, files });
    } catch (err) {
      if (err instanceof TarFormatError) {
        req.log.error({ err }, 'base image is not a valid tar');
        return fail(reply, 500, 'E_BAD_IMAGE', `rootfs image for role ${rm.role.name}: ${err.message}`);
      }
      throw err;
    }
    const ranged = Boolean(req.headers.range);
    const record = () => {
      servedWrite = servedWrite.then(async () => {
        served ??= await readServed(deps.dataDir);
        served[mac] = { host, role: rm.role.name, hash, at: new Date().toISOString() };
        await writeServed(deps.dataDir, served);
      }).catch((err: unknown) => req.log.error({ err }, 'cannot record what was served'));
    };
    const inm = req.headers['if-none-match'];
    const unchanged = inm !== undefined && etagMatches(inm, etag);
    let zstd: ChildProcessWithoutNullStreams | undefined;
    if (m[2] === 'tar.zst' && !unchanged) {
      const z = await startZstd();
      if (z instanceof Error) {
        req.log.error({ err: z }, 'cannot run zstd');
        return fail(reply, 500, 'E_NO_ZSTD', `cannot run zstd (${z.message}): install the zstd package, or fetch ${m[1]}.tar.gz`);
      }
      zstd = z.on('error', (err) => { req.log.error({ err }, 'zstd failed'); z.stdout.destroy(err); });
    }
    if (req.method === 'GET' && !unchanged) {
      // The event log is published (timelines, SSE): the hash in it is keyed, as in the API.
      const shown = publishedHash(await serverKey(deps.dataDir), hash).slice(0, 12);
      deps.events.emit({ mac, host, stage: 'http-rootfs', address: sourceAddress(req), detail: `${req.params.file} ${shown}${ranged ? ` ${req.headers.range}` : ''}` });
      reply.raw.on('finish', record);
    }
    if (m[2] === 'tar') {
      // Known length: Content-Length, Range (resume) and HEAD, like any image.
      return sendBody(req, reply, { segments: plan.segments, length: plan.length, etag, type: 'application/x-tar', cacheControl: 'no-cache', zeroCopy: deps.zeroCopy });
    }
    reply.header('etag', etag).header('cache-control', 'no-cache');
    if (unchanged) return reply.code(304).send();
    let body: Readable = segmentStream(plan.segments);
    if (m[2] === 'tar.gz') body = body.pipe(createGzip({ level: 6 }));
    if (zstd) {
      body.pipe(zstd.stdin);
      body = zstd.stdout;
    }
    return reply.type(m[2] === 'tar.gz' ? 'application/gzip' : 'application/zstd').send(body);
  });

  app.get<{ Params: { mac: string; '*': string } }>('/files/:mac/*', { schema: { params: pathParams('mac', '*') } }, async (req, reply) => {
    const found = machineFor(req.params.mac, reply);
    if (!found) return reply;
    const path = `/${req.params['*']}`;
    const f = found.files.find((x) => x.path === path);
    if (!f) return fail(reply, 404, 'E_NOT_FOUND', `${found.rm.machine.host} gets no file ${path}`);
    if (f.secret && !allowed(req, found.mac, found.rm.machine.ip)) {
      deps.events.emit({ mac: found.mac, host: found.rm.machine.host, stage: 'http-secret-denied', address: sourceAddress(req), detail: path });
      return fail(reply, 403, 'E_SECRET', `${path} is a secret of ${found.rm.machine.host}`);
    }
    return reply.type('application/octet-stream').send(f.content);
  });
}
