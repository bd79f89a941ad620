/**
 * Role image versions over HTTP (issue 18): a box's capture upload, and the operator's versions,
 * diff, promote, rollback and try — the same operations as `rolecast images ...`.
 *
 * POST /api/machines/<mac>/capture takes no API token: the box proves itself with its own capture
 * credential (delivered only to it, as a rendered secret file) and must send from its own address.
 * Both are checked before the body is read, so a stranger cannot make the server buffer an upload.
 * Errors carry the API's `{ code, message }` (plus `field` or `refused`), and the HTTP reason phrase
 * repeats the message: busybox wget shows the status line and nothing else.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Inventory } from '../inventory/types.js';
import type { LeaseView } from '../leases.js';
import type { EventSink } from '../events/types.js';
import type { RenderContext } from '../render/types.js';
import { ERRORS, RolecastError } from '../errors.js';
import { normaliseMac } from '../boot/facts.js';
import { resolveMachine } from '../inventory/resolve.js';
import { renderMachineFiles } from '../render/index.js';
import { captureCredential } from '../render/hostfiles.js';
import { normName } from '../rootfs/tarindex.js';
import { CaptureError, parseUpload } from '../images/capture-upload.js';
import { captureVersion, refusals } from '../images/capture.js';
import { diffVersions, roleImage, versionsReport } from '../images/roleimage.js';
import { pinVersion, promoteVersion, rollbackVersion } from '../images/versions.js';
import { requireToken, type TokenSet } from './auth.js';
import { pathParams, sourceAddress } from './common.js';

export const CAPTURE_MAX_BYTES = 64 * 1024 * 1024;

export interface ImagesDeps {
  getInventory: () => Inventory;
  imagesDir: string;
  /** Render context with the server key (the capture credential derives from it). */
  ctx: RenderContext;
  leases?: LeaseView;
  events: EventSink;
  tokens: TokenSet;
  captureMaxBytes?: number;
}


/** The reason phrase: one line of latin1 (Node refuses anything else there). */
const phrase = (s: string) => s.replace(/[^\x20-\x7e]/g, ' ').slice(0, 300);

function send(reply: FastifyReply, status: number, body: { code: string; message: string } & Record<string, unknown>): FastifyReply {
  reply.raw.statusMessage = phrase(body.message);
  return reply.code(status).type('application/json').send(body);
}

const digest = (s: string) => createHash('sha256').update(s).digest();

export function registerImages(app: FastifyInstance, deps: ImagesDeps): void {
  const limit = deps.captureMaxBytes ?? CAPTURE_MAX_BYTES;

  /** The box, checked by address and credential before its body is read. */
  function boxOf(req: FastifyRequest<{ Params: { mac: string } }>) {
    const inv = deps.getInventory();
    const mac = normaliseMac(req.params.mac);
    const m = mac ? inv.byMac.get(mac) : undefined;
    if (!mac || !m) throw new CaptureError('E_UNKNOWN_MACHINE', `no machine with MAC ${req.params.mac}`, 'mac');
    const from = sourceAddress(req);
    const refuse = (code: 'E_CAPTURE_ADDRESS' | 'E_CAPTURE_OFF' | 'E_CAPTURE_CREDENTIAL', message: string) => {
      deps.events.emit({ mac, host: m.host, stage: 'capture-refused', address: from, detail: code });
      return new CaptureError(code, message);
    };
    if (from !== m.ip && !m.macs.some((x) => deps.leases?.addressOf(x) === from)) {
      throw refuse('E_CAPTURE_ADDRESS', `captures for ${m.host} come only from ${m.host}'s own address (${m.ip}), not from ${from}`);
    }
    if (!deps.ctx.serverKey) throw refuse('E_CAPTURE_OFF', 'captures are off: this server has no key to check credentials with');
    const sent = /^Bearer +(\S+) *$/i.exec(req.headers.authorization ?? '')?.[1];
    if (!sent || !timingSafeEqual(digest(sent), digest(captureCredential(deps.ctx.serverKey, m.macs[0]!)))) {
      throw refuse('E_CAPTURE_CREDENTIAL', `send Authorization: Bearer <${m.host}'s /etc/rolecast/capture.key>`);
    }
    return { inv, mac, m, from };
  }

  app.register(async (scope) => {
    scope.addContentTypeParser(['application/x-tar', 'application/octet-stream'], { parseAs: 'buffer', bodyLimit: limit }, (_req, body, done) => done(null, body));
    // What rolecast-capture sends: busybox wget posts a file as a C string (cut at the first NUL), so the
    // tar travels base64-encoded.
    scope.addContentTypeParser('application/x-tar+base64', { parseAs: 'string', bodyLimit: limit }, (_req, body, done) => {
      const text = String(body).replace(/\s+/g, '');
      if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) {
        done(new CaptureError('E_CAPTURE_MALFORMED', 'body: not base64 (Content-Type application/x-tar+base64)', 'body'), undefined);
        return;
      }
      done(null, Buffer.from(text, 'base64'));
    });
    // As the app's handler (catalogue status, { code, message, fix, ...details }), plus the reason phrase
    // and fastify's own body errors in the capture's terms.
    scope.setErrorHandler((e: FastifyError, req, reply) => {
      let err: Error = e;
      if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE') err = new CaptureError('E_CAPTURE_TOO_LARGE', `upload larger than ${limit} bytes (http.captureMaxBytes): capture fewer paths at once`, 'body');
      else if (e.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') err = new CaptureError('E_CAPTURE_TYPE', 'send the upload as Content-Type: application/x-tar', 'content-type');
      else if (!(e instanceof RolecastError) && (e.statusCode ?? 500) < 500) err = new CaptureError('E_CAPTURE_MALFORMED', e.message, 'request');
      if (!(err instanceof RolecastError)) {
        req.log.error({ err }, 'capture failed');
        err = new RolecastError('E_INTERNAL', err.message);
      }
      const re = err as RolecastError;
      req.log.info({ code: re.code, details: re.details }, `capture refused: ${re.message}`);
      return send(reply, re.status, { code: re.code, message: re.message, fix: ERRORS[re.code].fix, ...re.details });
    });
    scope.post<{ Params: { mac: string }; Body: Buffer }>('/api/machines/:mac/capture', {
      bodyLimit: limit,
      schema: { params: pathParams('mac') },
      onRequest: async (req) => { boxOf(req); },
    }, async (req, reply) => {
      const { inv, mac, m, from } = boxOf(req);
      if (!Buffer.isBuffer(req.body)) throw new CaptureError('E_CAPTURE_MALFORMED', 'body: send the tar rolecast-capture makes', 'body');
      const rm = resolveMachine(inv, m);
      const ri = roleImage(inv, deps.imagesDir, rm.role.name);
      const request = await parseUpload(req.body);
      const rendered = new Map(renderMachineFiles(rm, inv, deps.ctx).map((f) => [normName(f.path), { secret: f.secret }]));
      const refused = refusals(request, { rendered });
      if (refused.length) {
        deps.events.emit({ mac, host: m.host, stage: 'capture-refused', address: from, detail: refused.map((r) => r.path).join(' ') });
        throw new CaptureError('E_CAPTURE_REFUSED', `refused, nothing recorded: ${refused.map((r) => `${r.path}: ${r.reason}`).join('; ')}`, 'paths', refused);
      }
      const result = await captureVersion(ri.dir, ri.name, request, { box: { host: m.host, mac, address: from } });
      const file = result.version?.file;
      deps.events.emit({ mac, host: m.host, stage: 'capture', address: from, detail: `${file ?? 'no change'} (${result.changes.length} changes on ${result.base})` });
      req.log.info({ mac, host: m.host, role: ri.role, version: file, changes: result.changes.length }, 'capture recorded');
      return reply.code(file ? 201 : 200).send({
        role: ri.role, version: file ?? null, base: result.base, changes: result.changes,
        message: file ? `${ri.role}: new version ${file} (not current: rolecast images try ${ri.role} ${file.slice(ri.name.length + 1, -4)} --on ${m.host}, then promote)` : `nothing differs from ${result.base}`,
      });
    });
  });

  registerImageAdmin(app, deps);
}

function registerImageAdmin(app: FastifyInstance, deps: ImagesDeps): void {
  const read = requireToken(deps.tokens, 'read');
  const admin = requireToken(deps.tokens, 'admin');
  const ri = (role: string) => roleImage(deps.getInventory(), deps.imagesDir, role);
  const by = (req: FastifyRequest) => `api:${sourceAddress(req)}`;
  // Errors go to the app's one handler (the catalogue's status and fix).
  const run = (_reply: FastifyReply, fn: () => Promise<unknown>) => fn();
  const role = pathParams('role');
  const versionBody = { type: 'object', required: ['version'], additionalProperties: false, properties: { version: { type: 'string', pattern: '^[\\w.-]{4,200}$' } } } as const;

  app.get<{ Params: { role: string } }>('/api/images/:role/versions', { preHandler: read, schema: { params: role } }, (req, reply) => run(reply, () => versionsReport(ri(req.params.role))));
  app.get<{ Params: { role: string }; Querystring: { from?: string; to?: string } }>('/api/images/:role/diff', {
    preHandler: read,
    schema: { params: role, querystring: { type: 'object', additionalProperties: false, properties: { from: { type: 'string', maxLength: 200 }, to: { type: 'string', maxLength: 200 } } } },
  }, (req, reply) => run(reply, () => diffVersions(ri(req.params.role), req.query.from, req.query.to)));
  app.post<{ Params: { role: string }; Body: { version: string } }>('/api/images/:role/promote', { preHandler: admin, schema: { params: role, body: versionBody } }, (req, reply) => run(reply, async () => {
    const r = ri(req.params.role);
    return promoteVersion(r.dir, r.name, req.body.version, by(req));
  }));
  app.post<{ Params: { role: string } }>('/api/images/:role/rollback', { preHandler: admin, schema: { params: role } }, (req, reply) => run(reply, async () => {
    const r = ri(req.params.role);
    return rollbackVersion(r.dir, r.name, by(req));
  }));
  app.put<{ Params: { role: string; host: string }; Body: { version: string } }>('/api/images/:role/try/:host', { preHandler: admin, schema: { params: pathParams('role', 'host'), body: versionBody } }, (req, reply) => run(reply, async () => {
    const r = ri(req.params.role);
    const inv = deps.getInventory();
    const m = inv.byHost.get(req.params.host);
    if (!m) throw new RolecastError('E_NOT_FOUND', `no machine ${req.params.host}`);
    const its = resolveMachine(inv, m).role;
    if (its.rootfs !== r.image) throw new RolecastError('E_USAGE', `${m.host} boots role ${its.name} (image ${its.rootfs ?? 'none'}), not ${r.image}`);
    return { host: m.host, version: await pinVersion(r.dir, r.name, m.host, req.body.version, by(req)) };
  }));
  app.delete<{ Params: { role: string; host: string } }>('/api/images/:role/try/:host', { preHandler: admin, schema: { params: pathParams('role', 'host') } }, (req, reply) => run(reply, async () => {
    const r = ri(req.params.role);
    await pinVersion(r.dir, r.name, req.params.host, undefined, by(req));
    return { host: req.params.host, version: null };
  }));
}
