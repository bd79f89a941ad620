/**
 * GET /rootfs/<mac>.tar(.gz|.zst) and /files/<mac>/<path>: what the plan says this MAC gets — its
 * role's base image with its generated files, or, for an unknown MAC under the unknown-machine policy,
 * the policy target's. Secret files are in neither (issue 16): they reach the machine only in its
 * boot-time bundle (GET /secrets/<mac>, src/http/secrets.ts). What is left holds no secret, so, like
 * the images, it goes to whoever asks; only a fetch from the machine's own address counts as "served".
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createGzip } from 'node:zlib';
import { basename, isAbsolute, join } from 'node:path';
import { realpathShared, statShared } from '../fsutil.js';
import type { Readable } from 'node:stream';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Inventory } from '../inventory/types.js';
import type { RenderContext } from '../render/types.js';
import type { State } from '../state/types.js';
import { normaliseMac, type BootRequest } from '../boot/facts.js';
import { planBoot } from '../boot/plan.js';
import { machineContent, type MachineContent } from '../boot/content.js';
import { RolecastError } from '../errors.js';
import { planRootfs, segmentStream, type RootfsPlan } from '../rootfs/compose.js';
import { withCaptureFiles } from '../rootfs/capture-files.js';
import { loadImageView } from '../images/view.js';
import { TarFormatError, type FileVersion } from '../rootfs/tarindex.js';
import { etagMatches, sendBody } from './send.js';
import type { BulkGate } from './bulk.js';
import { pathParams, sourceAddress } from './common.js';
import { fileSha256, rootfsEtag } from '../rootfs/etag.js';
import { machineContentHash } from '../render/index.js';
import { publishedHash } from './machines.js';

export interface RootfsDeps {
  getInventory: () => Inventory;
  ctx: RenderContext;
  imagesDir: string;
  zeroCopy?: boolean;
  /** The server's gate on large sends (http.bulkSlots). */
  gate?: BulkGate;
  state: State;
  /** The server key: hashes that reach the published event log are keyed (src/http/machines.ts). */
  key: Buffer;
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

/** A machine's composed rootfs as planned: its segments and what its ETag is made of. */
interface Planned { plan: RootfsPlan; baseSha: string | undefined; filesHash: string }

/**
 * Plans kept per machine content (the plan's MachineContent: one object per snapshot, render context, MAC,
 * role and base version; src/boot/content.ts) and base file version: a machine asking again (a retry, a
 * Range resume, HEAD then GET) reuses its plan instead of building its manifest and tar entries again.
 * The base is still stat'ed on every request, so a base replaced in place is noticed as before.
 */
const plans = new Map<MachineContent, { key: string; planned: Promise<Planned> }>();

/**
 * The most recent plans kept (least recently asked dropped first): each holds the machine's own tar
 * entries and manifest lines (~10-20 KB), so a storm of 10,000 does not keep 10,000 of them.
 */
const PLANS_KEPT = 256;

/** basename(realpath(base)) per base file version: the version name in the manifest's header. */
const versionNames = new Map<string, { key: string; name: Promise<string> }>();

function versionName(basePath: string, st: FileVersion): Promise<string> {
  const key = `${st.ino}:${st.size}:${st.mtimeMs}`;
  const hit = versionNames.get(basePath);
  if (hit?.key === key) return hit.name;
  const name = realpathShared(basePath).then((p) => basename(p));
  versionNames.set(basePath, { key, name });
  name.catch(() => { if (versionNames.get(basePath)?.name === name) versionNames.delete(basePath); });
  return name;
}

async function rootfsPlan(c: MachineContent, deps: RootfsDeps): Promise<Planned> {
  // No secret in the archive, and nothing derived from one in its ETag (it goes to anyone now).
  const served = c.secret ? c.files.filter((f) => !f.secret) : c.files;
  const filesHash = c.secret ? machineContentHash(served) : c.hash;
  const basePath = c.base ? (isAbsolute(c.base.path) ? c.base.path : join(deps.imagesDir, c.base.path)) : undefined;
  // One stat of the base per request, for every per-version cache below (sha256, tar index, manifest):
  // each stat is a thread-pool round trip, and a storm's rootfs requests made four of the same file.
  let baseStat: FileVersion | undefined;
  try {
    baseStat = basePath ? await statShared(basePath) : undefined;
  } catch (err) {
    throw new RolecastError('E_NO_IMAGE', `rootfs image ${basePath} for role ${c.role} is missing (rolecast images list)`, { cause: err });
  }
  const key = `${deps.imagesDir}\0${deps.ctx.baseUrl}\0${basePath ?? ''}\0${baseStat ? `${baseStat.ino}:${baseStat.size}:${baseStat.mtimeMs}` : ''}`;
  const hit = plans.get(c);
  if (hit?.key === key) {
    plans.delete(c);
    plans.set(c, hit);
    return hit.planned;
  }
  const planned = (async (): Promise<Planned> => {
    let baseSha: string | undefined;
    try {
      baseSha = basePath ? await fileSha256(basePath, baseStat) : undefined;
    } catch (err) {
      throw new RolecastError('E_NO_IMAGE', `rootfs image ${basePath} for role ${c.role} is missing (rolecast images list)`, { cause: err });
    }
    // Every rootfs with a base carries rolecast-capture and the manifest of what this box boots.
    // The manifest still lists the secret paths (kind s, no hash): rolecast-capture must skip them.
    const files = basePath
      ? (await withCaptureFiles(basePath, c.files, { server: deps.ctx.baseUrl, mac: c.mac, image: c.base!.name, version: await versionName(basePath, baseStat!), sha256: baseSha! }, baseStat)).filter((f) => !f.secret)
      : served;
    const plan = await planRootfs({ basePath, files, ...(baseStat ? { baseStat } : {}) });
    return { plan, baseSha, filesHash };
  })();
  plans.delete(c);
  plans.set(c, { key, planned });
  if (plans.size > PLANS_KEPT) plans.delete(plans.keys().next().value!);
  planned.catch(() => { if (plans.get(c)?.planned === planned) plans.delete(c); });
  return planned;
}

export function registerRootfs(app: FastifyInstance, deps: RootfsDeps): void {
  const { state } = deps;

  /** The plan's answer for this MAC and request; E_BAD_MAC / E_UNKNOWN_MACHINE when there is none. */
  async function contentFor(req: FastifyRequest, macText: string, request: BootRequest): Promise<MachineContent> {
    const mac = normaliseMac(macText);
    if (!mac) throw new RolecastError('E_BAD_MAC', `"${macText}" is not a MAC address`);
    const inv = deps.getInventory();
    // Which version of the base (current, or staged on this machine) is the plan's to decide.
    const images = await loadImageView(inv, deps.imagesDir);
    const plan = planBoot({ mac, protocol: 'http', ipxe: true, pxe: true, request, address: sourceAddress(req) }, inv, { baseUrl: deps.ctx.baseUrl, images });
    if (plan.action === 'ignore') throw new RolecastError('E_UNKNOWN_MACHINE', `no rootfs for ${mac}: ${plan.reason}`);
    return machineContent(plan, inv, deps.ctx);
  }

  /** A secret file asked for outside the boot bundle: refused, and the attempt is a boot event. */
  function refuseSecret(req: FastifyRequest, c: MachineContent, path: string): never {
    const from = sourceAddress(req);
    req.log.warn({ mac: c.mac, host: c.host, from, path }, 'secret file refused: secrets go only in the boot bundle');
    state.events.emit({ mac: c.mac, ...(c.host ? { host: c.host } : {}), stage: 'http-secret-denied', address: from, detail: `E_SECRET: ${path} outside the boot bundle` });
    throw new RolecastError('E_SECRET', `${path} is a secret of ${c.host ?? c.mac}: it reaches the machine only in its boot-time bundle (GET /secrets/<mac>)`);
  }

  /** The address rolecast reserved or leased for this MAC: a fetch from there is the machine's own. */
  const fromOwner = (req: FastifyRequest, c: MachineContent) => {
    const from = sourceAddress(req);
    return from === c.ownerAddress || from === state.leases.addressOf(c.mac);
  };

  app.get<{ Params: { file: string } }>('/rootfs/:file', { schema: { params: pathParams('file') } }, async (req, reply) => {
    const m = /^(.+?)\.(tar|tar\.gz|tar\.zst)$/.exec(req.params.file);
    if (!m) throw new RolecastError('E_NOT_FOUND', `no rootfs ${req.params.file}`);
    const c = await contentFor(req, m[1]!, 'rootfs');
    // No secret in the archive, and nothing derived from one in its ETag (it goes to anyone now).
    let planned: Planned;
    try {
      planned = await rootfsPlan(c, deps);
    } catch (err) {
      if (err instanceof TarFormatError) throw new RolecastError('E_BAD_IMAGE', `rootfs image for role ${c.role}: ${err.message}`, { cause: err });
      throw err;
    }
    const { plan } = planned;
    const etag = rootfsEtag(planned.baseSha, planned.filesHash, m[2]!);
    const ranged = Boolean(req.headers.range);
    const inm = req.headers['if-none-match'];
    const unchanged = inm !== undefined && etagMatches(inm, etag);
    let zstd: ChildProcessWithoutNullStreams | undefined;
    if (m[2] === 'tar.zst' && !unchanged) {
      const z = await startZstd();
      if (z instanceof Error) throw new RolecastError('E_NO_ZSTD', `cannot run zstd (${z.message}): install the zstd package, or fetch ${m[1]}.tar.gz`, { cause: z });
      zstd = z.on('error', (err) => { req.log.error({ err }, 'zstd failed'); z.stdout.destroy(err); });
    }
    if (req.method === 'GET' && !unchanged) {
      // The event log is published (timelines, SSE): the hash in it is keyed, as in the API.
      const shown = publishedHash(deps.key, c.hash).slice(0, 12);
      state.events.emit({ mac: c.mac, ...(c.host ? { host: c.host } : {}), stage: 'http-rootfs', address: sourceAddress(req), detail: `${req.params.file} ${shown}${ranged ? ` ${req.headers.range}` : ''}` });
      // What this machine was last served, once the response went out whole to the machine itself.
      if (fromOwner(req, c)) reply.raw.on('finish', () => {
        state.served.record(c.mac, { ...(c.host ? { host: c.host } : {}), role: c.role, hash: c.hash, at: new Date().toISOString() })
          .catch((err: unknown) => req.log.error({ err }, 'cannot record what was served'));
      });
    }
    if (m[2] === 'tar') {
      // Known length: Content-Length, Range (resume) and HEAD, like any image.
      return sendBody(req, reply, { segments: plan.segments, length: plan.length, etag, type: 'application/x-tar', cacheControl: 'no-cache', zeroCopy: deps.zeroCopy, ...(deps.gate ? { gate: deps.gate } : {}) });
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
    const c = await contentFor(req, req.params.mac, 'files');
    const path = `/${req.params['*']}`;
    const f = c.files.find((x) => x.path === path);
    if (!f) throw new RolecastError('E_NOT_FOUND', `${c.host ?? c.mac} gets no file ${path}`);
    if (f.secret) refuseSecret(req, c, path);
    return reply.type('application/octet-stream').send(f.content);
  });
}
