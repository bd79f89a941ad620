/**
 * The HTTP side, built without listening (tests use inject()). Boot scripts and configs answer from
 * planBoot and the renderers; images stream from disk with Range/ETag (send.ts);
 * the API reports machines and whether their next boot would change.
 * Unknown machine: 404. A renderer failing: 500 with its error code — never the other way round.
 */
import { Readable } from 'node:stream';
import type { Socket } from 'node:net';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { isAbsolute, join } from 'node:path';
import { stat } from 'node:fs/promises';
import type { ServerConfig } from '../config.js';
import { baseUrlOf } from '../config.js';
import type { Logger } from '../log.js';
import type { Inventory } from '../inventory/types.js';
import { normaliseMac } from '../boot/facts.js';
import { planBoot, type BootTargetPlan } from '../boot/plan.js';
import type { BootRequest } from '../boot/facts.js';
import { machineAt } from '../boot/identify.js';
import { RolecastError } from '../errors.js';
import { renderBootConfig, renderIpxeChain } from '../render/index.js';
import { hashesPending, machineApiJson } from './machines.js';
import { registerErrorHandler } from './errors.js';
import { registerRootfs } from './rootfs.js';
import { registerApi } from './api.js';
import { registerImages } from './images.js';
import { registerDiscovered } from './discovered.js';
import { Discovery } from '../discovery/service.js';
import type { SseOptions } from './sse.js';
import { loadImageView } from '../images/view.js';
import type { ReloadResult } from '../inventory/watch.js';
import { registerMetrics } from './metrics.js';
import { fileBody, sendBody } from './send.js';
import { BulkGate } from './bulk.js';
import { tcpPressureProbe, type TcpPressure } from './tcp-pressure.js';
import { pathParams, sourceAddress } from './common.js';
import { requireToken, tokensFrom } from './auth.js';
import { registerFleet, type ReloadStatus } from './fleet.js';
import { registerUi } from './ui/routes.js';
import { registerSessionHook, Sessions } from './ui/session.js';
import { createResolver } from '../tftp/resolve.js';
import { capRetransmitTimeout, sendfileEngine, sendfileUnavailableReason } from '../native/sendfile.js';
import swagger from '@fastify/swagger';
import { openapiOptions } from './openapi.js';
import { IMAGE_FIX, ImageStatus, planImages } from '../imagecheck.js';
import { renderIpxeUnbootable } from '../render/ipxe.js';
import type { State } from '../state/types.js';
import { setBootOnce } from '../inventory/edit.js';
import { serverKey } from '../serverkey.js';
import type { PowerService } from '../bmc/service.js';
import type { ConsoleLogStore } from '../bmc/consolelog.js';
import { registerPowerApi } from './power.js';
import { BootTokens } from '../boottokens.js';
import { registerSecrets } from './secrets.js';
import { statShared } from '../fsutil.js';
import { lazyValidators, warmValidators } from './lazy-validators.js';

export interface AppDeps {
  getInventory: () => Inventory;
  config: ServerConfig;
  logger: Logger;
  /** The kernel's TCP memory pressure flag for the gate on large sends (default: /proc/net/protocols; tests set their own). */
  tcpPressure?: TcpPressure;
  state: State;
  /** Re-read the profiles after an edit made through the API (the file watch would too, later). */
  reload?: () => Promise<unknown>;
  /** Reload the profiles now (POST /api/reload); `force` applies one the drop guard held back. */
  reloadNow?: (force: boolean) => Promise<ReloadResult>;
  /** The last profile reload's outcome, for the UI's "refused" banner. */
  lastReload?: () => ReloadStatus | undefined;
  /** Called when a plan says its request used a boot-once target up: the machine returns to its role after. */
  bootOnceServed?: (host: string, target: string) => void;
  /** The server key (src/serverkey.ts): with it, machines get capture credentials and may send captures. */
  serverKey?: Buffer;
  /** Bound on the discovery inbox (default 4096 entries). */
  discoveryMaxEntries?: number;
  /** Event stream options (src/http/sse.ts). */
  sse?: SseOptions;
  /** BMC power (POST/GET /api/machines/<host>/power); routes absent without it. Its log is state.power. */
  power?: PowerService;
  /** Boot console logs (GET /api/machines/<host>/console), kept by the console recorder. */
  consoles?: ConsoleLogStore;
}

/**
 * Every HTTP connection's retransmission backoff capped at `ms` (http.rtoMaxMs; the kernel's own cap is
 * 120 s). Once the kernel refuses (before Linux 6.15: ENOPROTOOPT), said once and not asked again.
 */
function capRetransmits(app: FastifyInstance, ms: number, logger: Logger): void {
  if (ms >= 120_000) return;
  let on = true;
  app.server.on('connection', (socket: Socket) => {
    if (!on) return;
    const r = capRetransmitTimeout(socket, ms);
    if (r === 0) return;
    on = false;
    logger.info({ rtoMaxMs: ms, ...(r ? { code: r } : {}) }, r === 'ENOPROTOOPT' ? 'the kernel cannot cap TCP retransmission backoff (TCP_RTO_MAX_MS needs Linux 6.15+): http.rtoMaxMs has no effect'
      : 'cannot cap TCP retransmission backoff: http.rtoMaxMs has no effect');
  });
}

/** How long after listening the route validators not compiled yet are compiled in the background. */
const WARM_VALIDATORS_AFTER_MS = 2000;

export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  // pino's Logger and fastify's base logger type differ only in generics: widen once here.
  const { config } = deps;
  const ctx = { baseUrl: baseUrlOf(config), server: config.address, ...(deps.serverKey ? { serverKey: deps.serverKey } : {}) };
  const app = Fastify({ loggerInstance: deps.logger.child({ component: 'http' }) as unknown as FastifyBaseLogger, logController: new LogController({ disableRequestLogging: true }), trustProxy: false,
    // Long path parameters reach the route schemas (400 with our error shape) instead of the router's bare 414.
    routerOptions: { maxParamLength: 2048 },
    // Unknown fields are errors (a typo must not be dropped silently), as in the profiles.
    ajv: { customOptions: { removeAdditional: false } },
    // Route schemas compile on first use, not at start-up (src/http/lazy-validators.ts).
    schemaController: { compilersFactory: { buildValidator: lazyValidators() as never } } }) as unknown as FastifyInstance;
  // OpenAPI from the route schemas, served at /api/openapi.json.
  if (config.http.sendfile && !sendfileEngine()) deps.logger.warn({ reason: sendfileUnavailableReason() }, 'sendfile engine unavailable: images and rootfs stream through Node (slower)');
  capRetransmits(app, config.http.rtoMaxMs, deps.logger);
  // One gate per server for its large sends (http.bulkSlots, http.bulkWhen; src/http/bulk.ts).
  const { bulkSlots, bulkHoldMs, bulkWhen } = config.http;
  const pressure = bulkSlots > 0 && bulkWhen === 'pressure' ? deps.tcpPressure ?? tcpPressureProbe({
    onUnavailable: (why) => deps.logger.info({ why }, 'TCP memory pressure cannot be read: large sends never wait (http.bulkWhen: pressure); bulkWhen: always makes them take turns regardless'),
  }) : undefined;
  const gate = new BulkGate(bulkSlots, bulkHoldMs, bulkWhen, pressure);
  await app.register(swagger, openapiOptions('0.1.0'));
  registerMetrics(app, { events: deps.state.events, getInventory: deps.getInventory, leases: deps.state.leases, sendfile: () => config.http.sendfile && sendfileEngine() !== undefined, bulk: () => gate.stats(), ...(pressure ? { tcpPressure: pressure } : {}) });
  // Before any route: a UI session cookie counts as a token of its level (src/http/ui/session.ts).
  const apiTokens = tokensFrom(config.http);
  const sessions = new Sessions();
  registerSessionHook(app, sessions);
  app.get('/api/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  registerErrorHandler(app);
  // Route validators compile lazily; once listening, the rest of them in the background, a turn each.
  // Not at once: the first second after a start belongs to the first requests and the snapshot's warm-up
  // (~0.1 s of compiling then made the first GET /api/machines wait its turn); a route used before then
  // compiles its own validator (a few ms). A broken schema fails its own route.
  app.addHook('onListen', (done) => { setTimeout(() => { warmValidators().catch(() => undefined); }, WARM_VALIDATORS_AFTER_MS).unref(); done(); });
  const { state } = deps;
  const leaseHolder = (ip: string) => state.leases.holder(ip)?.mac;

  /** The plan for a MAC as iPXE (or GRUB/pxelinux) fetching over HTTP; E_NO_BOOT (404) when it gets none. */
  function planFor(macText: string, arch: number | undefined, request: BootRequest, address: string): BootTargetPlan {
    const mac = normaliseMac(macText);
    if (!mac) throw new RolecastError('E_BAD_MAC', `"${macText}" is not a MAC address`);
    const plan = planBoot({ mac, protocol: 'http', arch, ipxe: true, pxe: true, request, address }, deps.getInventory(), ctx);
    if (plan.action === 'ignore') throw new RolecastError('E_NO_BOOT', `${mac}: ${plan.reason}`);
    return plan;
  }

  // Boot tokens (issue 16): minted with the script or config, spent by the secret bundle.
  const key = await serverKey(config.dataDir);
  const tokens = new BootTokens({ key, boots: state.boots, leases: state.leases, config: config.secrets, dhcpAuthoritative: config.dhcp.mode === 'authoritative' });
  const mintToken = (plan: BootTargetPlan, address: string) => tokens.mint(plan, address);

  const images = new ImageStatus(config.imagesDir);
  /** The plan's word on boot-once: only the request that hands out the config uses the target up. */
  const afterServe = (plan: BootTargetPlan) => {
    if (plan.consumesBootOnce && plan.host) deps.bootOnceServed?.(plan.host, plan.role.name);
  };

  const archQuery = { type: 'object', properties: { arch: { type: 'integer', minimum: 0, maximum: 65535 } }, additionalProperties: false } as const;

  // "degraded" while images the inventory names are missing: the server runs, but some machines cannot boot.
  app.get('/healthz', async () => {
    const inv = deps.getInventory();
    const missing = images.missing(inv);
    // A shared state database that cannot be reached: reserved machines still boot, pool clients do not.
    const state = deps.state.health?.() ?? { backend: 'file', up: true };
    return { ok: true, status: missing.length || !state.up ? 'degraded' : 'ok', version: inv.version.slice(0, 12), machines: inv.machines.length, missingImages: missing, sendfile: config.http.sendfile && sendfileEngine() !== undefined, state };
  });

  app.get('/boot.ipxe', async (_req, reply) => reply.type('text/plain').send(renderIpxeChain(ctx)));

  app.get<{ Params: { file: string }; Querystring: { arch?: number } }>('/boot/:file', { schema: { params: pathParams('file'), querystring: archQuery } }, async (req, reply) => {
    const m = /^(.+)\.ipxe$/.exec(req.params.file);
    if (!m) throw new RolecastError('E_NOT_FOUND', `no boot file ${req.params.file}`);
    const plan = planFor(m[1]!, req.query.arch, 'script', sourceAddress(req));
    req.log.info({ mac: plan.mac, host: plan.host, role: plan.role.name }, 'boot script');
    const who = { mac: plan.mac, ...(plan.host ? { host: plan.host } : {}), address: sourceAddress(req) };
    state.events.emit({ ...who, stage: 'http-script', detail: plan.role.name });
    const problems = images.problemsOf(deps.getInventory(), planImages(plan));
    if (problems.length) {
      // Its images are not on this server: a clear failure (event + console text), not a kernel 404 loop.
      state.events.emit({ ...who, stage: 'failed', detail: `cannot boot ${plan.role.name}: missing ${problems.join('; ')}` });
      return reply.type('text/plain').send(renderIpxeUnbootable(plan, problems, IMAGE_FIX));
    }
    const script = renderBootConfig('ipxe', plan, deps.getInventory(), ctx, await mintToken(plan, sourceAddress(req)));
    afterServe(plan);
    return reply.type('text/plain').send(script);
  });

  app.get<{ Params: { mac: string; cfg: string }; Querystring: { arch?: number } }>('/boot/:mac/:cfg', { schema: { params: pathParams('mac', 'cfg'), querystring: archQuery } }, async (req, reply) => {
    const kind = req.params.cfg === 'grub.cfg' ? 'grub' : req.params.cfg === 'pxelinux.cfg' ? 'pxelinux' : undefined;
    if (!kind) throw new RolecastError('E_NOT_FOUND', `no boot config ${req.params.cfg}`);
    const plan = planFor(req.params.mac, req.query.arch ?? (kind === 'grub' ? 7 : 0), 'config', sourceAddress(req));
    const text = renderBootConfig(kind, plan, deps.getInventory(), ctx, await mintToken(plan, sourceAddress(req)));
    state.events.emit({ mac: plan.mac, stage: 'http-config', ...(plan.host ? { host: plan.host } : {}), detail: `${req.params.cfg} (${plan.role.name})`, address: sourceAddress(req) });
    afterServe(plan);
    return reply.type('text/plain').send(text);
  });

  app.get<{ Params: { name: string } }>('/images/:name', { schema: { params: pathParams('name') } }, async (req, reply) => {
    const inv = deps.getInventory();
    const img = inv.images[req.params.name];
    if (!img) throw new RolecastError('E_NOT_FOUND', `no image "${req.params.name}"`);
    const file = isAbsolute(img.path) ? img.path : join(config.imagesDir, img.path);
    // Images hold no secrets (DESIGN.md): anyone may fetch them. The plan of whoever asks names the boot
    // in the timeline.
    const who = machineAt(inv, sourceAddress(req), leaseHolder);
    if (who.mac && req.method === 'GET') {
      const plan = planBoot({ mac: who.mac, protocol: 'http', ipxe: true, pxe: true, request: 'image', address: sourceAddress(req) }, inv, ctx);
      const host = plan.action === 'boot' ? plan.host : who.host;
      state.events.emit({ mac: who.mac, ...(host ? { host } : {}), stage: img.kind === 'kernel' ? 'http-kernel' : img.kind === 'initrd' ? 'http-initrd' : 'http-image', detail: img.name, address: sourceAddress(req) });
    }
    const st = await statShared(file).catch(() => undefined);
    // An image the inventory names but the disk lacks is our failure, not the client's: 500.
    if (!st?.isFile()) throw new RolecastError('E_NO_IMAGE', `image "${img.name}": ${file} is missing (rolecast images list)`);
    return sendBody(req, reply, { ...fileBody(file, st), zeroCopy: config.http.sendfile, gate });
  });

  // Loaders over HTTP (UEFI HTTP boot, arch 16/19, gets a URL for its loader from DHCP): the same files,
  // roots and confinement as TFTP, plus the rendered pxelinux/GRUB configs for loaders that fetch over HTTP.
  const loaders = createResolver({ roots: config.tftp.roots, imagesDir: config.imagesDir, getInventory: deps.getInventory, ctx, bootOnceServed: deps.bootOnceServed, leaseHolder, mintToken });
  app.get<{ Params: { '*': string } }>('/loaders/*', { schema: { params: pathParams('*') } }, async (req, reply) => {
    const from = sourceAddress(req);
    const r = await loaders.resolve(req.params['*'], { address: from });
    if (r.kind === 'missing') throw new RolecastError('E_NOT_FOUND', `no loader ${req.params['*']}: ${r.reason}`);
    if (r.kind === 'denied') throw new RolecastError('E_DENIED', `${req.params['*']}: ${r.reason}`);
    if (r.mac && req.method === 'GET') state.events.emit({ mac: r.mac, ...(r.host ? { host: r.host } : {}), stage: r.label === 'config' ? 'http-config' : 'http-loader', detail: req.params['*'], address: from });
    if (r.kind === 'virtual') return reply.type('text/plain').send(r.content);
    return sendBody(req, reply, { ...fileBody(r.absPath, await stat(r.absPath)), zeroCopy: config.http.sendfile, gate });
  });

  app.get('/api/machines', { preHandler: requireToken(apiTokens, 'read') }, async (_req, reply) => {
    const inv = deps.getInventory();
    const view = { ...ctx, images: await loadImageView(inv, config.imagesDir) };
    // Right after the start the files hashes may still be on their way: rows now, hashes marked pending.
    const pending = hashesPending(inv, view);
    if (pending) void reply.header('x-rolecast-hashes', 'pending');
    // Streamed in slices (machineApiJson): 10,000 rows at once would hold up DHCP and TFTP.
    return reply.type('application/json; charset=utf-8').send(Readable.from(machineApiJson(inv, view, state, key, pending)));
  });
  registerRootfs(app, { getInventory: deps.getInventory, ctx, imagesDir: config.imagesDir, zeroCopy: config.http.sendfile, gate, state, key });
  registerSecrets(app, { getInventory: deps.getInventory, ctx, state, tokens, images: (inv) => loadImageView(inv, config.imagesDir) });
  registerApi(app, { getInventory: deps.getInventory, state, tokens: apiTokens, reload: deps.reload, reloadNow: deps.reloadNow, ...(deps.sse ? { sse: deps.sse } : {}) });
  const setBootOnceAndReload = async (host: string, target: string | null) => { await setBootOnce(state.profiles, host, target, { who: 'api' }); await deps.reload?.(); };
  registerFleet(app, { getInventory: deps.getInventory, state, ctx, dataDir: config.dataDir, tokens: apiTokens, images: (inv) => loadImageView(inv, config.imagesDir), lastReload: deps.lastReload, setBootOnce: setBootOnceAndReload });
  const discovery = new Discovery({
    store: state.discovered, getInventory: deps.getInventory, reload: async () => { await deps.reload?.(); }, profiles: state.profiles, leases: state.leases,
    events: state.events, logger: deps.logger.child({ component: 'discovery' }),
    ...(deps.discoveryMaxEntries ? { maxEntries: deps.discoveryMaxEntries } : {}),
  });
  registerDiscovered(app, { discovery, tokens: apiTokens, commission: (h) => setBootOnceAndReload(h, 'discover') });
  registerUi(app, { tokens: apiTokens, sessions });
  registerImages(app, { getInventory: deps.getInventory, imagesDir: config.imagesDir, ctx, leases: state.leases, events: state.events, tokens: apiTokens, ...(config.http.captureMaxBytes ? { captureMaxBytes: config.http.captureMaxBytes } : {}) });
  if (deps.power) registerPowerApi(app, { getInventory: deps.getInventory, tokens: apiTokens, power: deps.power, log: state.power, ...(deps.consoles ? { consoles: deps.consoles } : {}) });

  return app;
}
