/**
 * The discovery inbox over HTTP.
 *   POST /api/discovered/<mac>        the commissioning image's report: no token (a blank box has none),
 *                                     accepted only from the address rolecast leased to that MAC, at most
 *                                     64 KiB, malformed → 400 naming the field
 *   GET  /api/discovered/<key>        one entry (read token, or the box itself from its own address:
 *                                     the commissioning image polls this until it is adopted)
 *   GET  /api/discovered              every entry (read token)
 *   POST /api/discovered/<key>/adopt  {host?, role?, ip?} (admin token) → one line in machines.yaml
 *   DELETE /api/discovered/<key>      forget an entry (admin token)
 * <key> is a MAC (any of the box's), its SMBIOS serial or its UUID.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { normaliseMac } from '../boot/facts.js';
import { RolecastError } from '../errors.js';
import type { DiscoveredRecord } from '../state/types.js';
import { authFailure, requireToken, sendAuthFailure, type TokenSet } from './auth.js';
import { pathParams, sourceAddress } from './common.js';
import { parseReportText, ReportError } from '../discovery/report.js';
import type { Discovery } from '../discovery/service.js';

export const REPORT_LIMIT = 64 * 1024;

export function view(d: Discovery, r: DiscoveredRecord): Record<string, unknown> {
  if (r.state !== 'waiting') return { ...r };
  const s = d.suggestion(r);
  // The next free address is suggested even without a rule (discovery.addresses), so the inbox can fill it in.
  const ip = d.nextAddress(r, s?.range);
  const suggestion = { ...(s ? { rule: s.rule, host: s.host, role: s.role } : {}), ...(ip ? { ip } : {}) };
  return { ...r, ...(Object.keys(suggestion).length ? { suggestion } : {}) };
}

export interface DiscoveredRoutes {
  discovery: Discovery;
  tokens: TokenSet;
  /** Boot-once the commissioning role (`POST /api/machines/<host>/commission`, as `rolecast commission`). */
  commission?: (host: string) => Promise<void>;
}

export function registerDiscovered(app: FastifyInstance, deps: DiscoveredRoutes): void {
  const { discovery: d, tokens } = deps;
  const keyParams = pathParams('key');

  // The report route parses its own body: a syntax error must come back as a 400 naming where it is,
  // in the same shape as a bad field, and the size bound is this route's.
  void app.register(async (scope) => {
    scope.removeContentTypeParser('application/json');
    scope.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit: REPORT_LIMIT }, (_req, body, done) => done(null, body));
    scope.post<{ Params: { key: string }; Body: string }>('/api/discovered/:key', { bodyLimit: REPORT_LIMIT, schema: { params: keyParams } }, async (req, reply) => {
      const mac = normaliseMac(req.params.key);
      if (!mac) throw new RolecastError('E_BAD_MAC', `"${req.params.key}" is not a MAC address`);
      const from = sourceAddress(req);
      if (!d.accepts(mac, from)) {
        req.log.warn({ mac, from }, 'discovery report refused: not from the address leased to that MAC');
        throw new RolecastError('E_REPORT_SOURCE', `a report for ${mac} is accepted only from the address rolecast leased to it`);
      }
      let facts;
      try {
        facts = parseReportText(typeof req.body === 'string' ? req.body : '');
      } catch (err) {
        if (!(err instanceof ReportError)) throw err;
        req.log.warn({ mac, from, field: err.field, reason: err.message }, 'discovery report refused: malformed');
        throw new RolecastError('E_BAD_REPORT', err.message, { details: { field: err.field } });
      }
      const rec = await d.report(mac, facts, from);
      return reply.code(202).send({ entry: rec.mac, state: rec.state, ...(rec.host ? { host: rec.host } : {}) });
    });
  });

  app.get('/api/discovered', { preHandler: requireToken(tokens, 'read') }, async () => d.list().map((r) => view(d, r)));

  app.get<{ Params: { key: string } }>('/api/discovered/:key', { schema: { params: keyParams } }, async (req: FastifyRequest<{ Params: { key: string } }>, reply) => {
    const mac = normaliseMac(req.params.key);
    const found = d.find(req.params.key, mac);
    // The box itself may read its own entry (it polls for adoption) without a token.
    const own = mac !== undefined && d.accepts(mac, sourceAddress(req));
    if (!own) {
      const f = authFailure(tokens, 'read', req.headers.authorization);
      if (f) return sendAuthFailure(reply, f);
    }
    if (found.length === 0) throw new RolecastError('E_NOT_FOUND', `nothing in the discovery inbox matches "${req.params.key}"`);
    if (found.length > 1) throw new RolecastError('E_ADOPT_AMBIGUOUS', `"${req.params.key}" matches ${found.length} entries: name one by MAC`);
    return view(d, found[0]!);
  });

  app.post<{ Params: { key: string }; Body: { host?: string; role?: string; ip?: string } }>('/api/discovered/:key/adopt', {
    preHandler: requireToken(tokens, 'admin'),
    schema: {
      params: keyParams,
      body: { type: 'object', additionalProperties: false, properties: { host: { type: 'string', maxLength: 63 }, role: { type: 'string', maxLength: 64 }, ip: { type: 'string', maxLength: 15 } } },
    },
  }, async (req) => {
    const { record, adoption } = await d.adopt(req.params.key, normaliseMac(req.params.key), { ...(req.body ?? {}), by: `api ${sourceAddress(req)}` });
    return { entry: record.mac, host: adoption.host, role: adoption.role, ip: adoption.ip, macs: adoption.macs, line: adoption.line.trimEnd() };
  });

  app.post<{ Params: { host: string } }>('/api/machines/:host/commission', { preHandler: requireToken(tokens, 'admin'), schema: { params: pathParams('host') } }, async (req) => {
    if (!deps.commission) throw new RolecastError('E_OFF', 'commissioning is not available on this server');
    await deps.commission(req.params.host);
    return { host: req.params.host, bootOnce: 'discover' };
  });

  app.delete<{ Params: { key: string } }>('/api/discovered/:key', { preHandler: requireToken(tokens, 'admin'), schema: { params: keyParams } }, async (req) => {
    const r = await d.forget(req.params.key, normaliseMac(req.params.key));
    return { forgotten: r.mac };
  });
}
