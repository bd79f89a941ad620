/**
 * BMC power over the API: `POST /api/machines/<host>/power {"op": ...}` (admin token) and
 * `GET /api/machines/<host>/power` (read token: the state read from the BMC now, and the recent power
 * actions); `GET /api/machines/<host>/console` (read token): the console log of its last recorded boot
 * (src/bmc/recorder.ts) as screen text, or its raw bytes with `?raw=1`. Same PowerService as the CLI, so the same caps, deadlines and timeline entries. A BMC
 * failure answers with the catalogue's status for its code (502/503/504, 409) and the message — never a
 * 200 with a guessed state.
 */
import type { FastifyInstance } from 'fastify';
import type { Inventory } from '../inventory/types.js';
import type { PowerLog } from '../state/types.js';
import type { PowerService, PowerResult } from '../bmc/service.js';
import { normaliseMac } from '../boot/facts.js';
import { requireToken, type TokenSet } from './auth.js';
import { pathParams } from './common.js';
import { errorSpec } from '../errors.js';
import type { ConsoleLogStore } from '../bmc/consolelog.js';
import { screenText } from '../bmc/screen.js';

export interface PowerApiDeps {
  getInventory: () => Inventory;
  tokens: TokenSet;
  power: PowerService;
  log?: PowerLog;
  /** Boot console logs; the console route is absent without them. */
  consoles?: Pick<ConsoleLogStore, 'read'>;
}


const OPS = ['status', 'on', 'off', 'cycle', 'reset', 'pxe'] as const;

export function registerPowerApi(app: FastifyInstance, deps: PowerApiDeps): void {
  const find = (inv: Inventory, key: string) => inv.byHost.get(key) ?? inv.byMac.get(normaliseMac(key) ?? '');
  const send = (reply: { code(n: number): { send(b: unknown): unknown } }, r: PowerResult, extra: object = {}) =>
    reply.code(r.ok ? 200 : errorSpec(r.code ?? 'E_BMC_PROTOCOL').status).send({ ...r, ...extra });

  app.get<{ Params: { host: string } }>('/api/machines/:host/power', {
    schema: { params: pathParams('host') }, preHandler: requireToken(deps.tokens, 'read'),
  }, async (req, reply) => {
    const inv = deps.getInventory();
    const m = find(inv, req.params.host);
    if (!m) return reply.code(404).send({ code: 'E_UNKNOWN_MACHINE', message: `no machine ${req.params.host}` });
    const r = await deps.power.run(inv, m, 'status', 'api');
    return send(reply, r, { recent: deps.log?.list(m.host).slice(-20) ?? [] });
  });

  app.post<{ Params: { host: string }; Body: { op: (typeof OPS)[number] } }>('/api/machines/:host/power', {
    bodyLimit: 1024,
    preHandler: requireToken(deps.tokens, 'admin'),
    schema: { params: pathParams('host'), body: { type: 'object', required: ['op'], additionalProperties: false, properties: { op: { enum: [...OPS] } } } },
  }, async (req, reply) => {
    const inv = deps.getInventory();
    const m = find(inv, req.params.host);
    if (!m) return reply.code(404).send({ code: 'E_UNKNOWN_MACHINE', message: `no machine ${req.params.host}` });
    return send(reply, await deps.power.run(inv, m, req.body.op, 'api'));
  });

  const consoles = deps.consoles;
  if (!consoles) return;
  app.get<{ Params: { host: string }; Querystring: { raw?: string } }>('/api/machines/:host/console', {
    schema: { params: pathParams('host'), querystring: { type: 'object', additionalProperties: false, properties: { raw: { type: 'string', enum: ['0', '1'] } } } },
    preHandler: requireToken(deps.tokens, 'read'),
  }, async (req, reply) => {
    const m = find(deps.getInventory(), req.params.host);
    if (!m) return reply.code(404).send({ code: 'E_UNKNOWN_MACHINE', message: `no machine ${req.params.host}` });
    const log = await consoles.read(m.host);
    if (!log) return reply.code(404).send({ code: 'E_NOT_FOUND', message: `no console log for ${m.host}: none of its boots was recorded (an IPMI bmc is needed; Redfish has no standard Serial over LAN)` });
    if (req.query.raw === '1') return reply.type('application/octet-stream').header('cache-control', 'no-store').send(log.bytes);
    return reply.header('cache-control', 'no-store').send({ host: m.host, recording: log.recording, ...(log.updated ? { updated: log.updated } : {}), bytes: log.bytes.length, text: screenText(log.bytes.toString('utf8')) });
  });
}
