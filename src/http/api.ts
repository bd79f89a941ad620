/**
 * The API beside the boot routes: boot events (timeline, phone-home, live SSE stream), one machine,
 * role changes (bearer token; same validation and YAML edit as `rolecast assign`), leases.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Inventory } from '../inventory/types.js';
import type { LeaseView } from '../leases.js';
import type { EventStore } from '../events/store.js';
import { normaliseMac } from '../boot/facts.js';
import { ProfileError, formatIssue } from '../errors.js';
import { pathParams, sourceAddress } from './common.js';
import { requireToken, type TokenSet } from './auth.js';

export interface ApiDeps {
  getInventory: () => Inventory;
  events: EventStore;
  leases?: LeaseView;
  tokens: TokenSet;
  assignRole?: (host: string, role: string) => Promise<void>;
}

const macParam = { type: 'object', properties: { mac: { type: 'string', maxLength: 32 } }, required: ['mac'] } as const;

export function registerApi(app: FastifyInstance, deps: ApiDeps): void {
  const fail = (reply: FastifyReply, status: number, code: string, message: string, extra: object = {}) => reply.code(status).send({ code, message, ...extra });
  // Everything that reveals the inventory, leases or boot history needs at least a read token.
  const read = requireToken(deps.tokens, 'read');
  const admin = requireToken(deps.tokens, 'admin');

  app.get<{ Params: { mac: string } }>('/api/machines/:mac/events', { schema: { params: macParam }, preHandler: read }, async (req, reply) => {
    const mac = normaliseMac(req.params.mac) ?? deps.getInventory().byHost.get(req.params.mac)?.macs[0];
    if (!mac) return fail(reply, 404, 'E_UNKNOWN_MACHINE', `no machine ${req.params.mac}`);
    return deps.events.timeline(mac);
  });

  // Phone-home from the initramfs and the booted system: no token (machines have none), small bodies.
  app.post<{ Params: { mac: string }; Body: { stage: 'initramfs' | 'booted' | 'failed'; detail?: string } }>('/api/machines/:mac/events', {
    bodyLimit: 4096,
    schema: {
      params: macParam,
      body: { type: 'object', required: ['stage'], additionalProperties: false, properties: { stage: { enum: ['initramfs', 'booted', 'failed'] }, detail: { type: 'string', maxLength: 1024 } } },
    },
  }, async (req, reply) => {
    const mac = normaliseMac(req.params.mac);
    if (!mac) return fail(reply, 400, 'E_BAD_MAC', `"${req.params.mac}" is not a MAC address`);
    const host = deps.getInventory().byMac.get(mac)?.host;
    deps.events.emit({ mac, stage: req.body.stage, ...(host ? { host } : {}), ...(req.body.detail ? { detail: req.body.detail } : {}), address: sourceAddress(req) });
    return reply.code(202).send({ ok: true });
  });

  app.get('/api/events', { preHandler: read }, (req, reply) => {
    reply.hijack();
    reply.raw.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    reply.raw.write(': rolecast boot events\n\n');
    const off = deps.events.subscribe((e) => reply.raw.write(`event: ${e.stage}\ndata: ${JSON.stringify(e)}\n\n`));
    req.raw.on('close', off);
  });

  app.get<{ Params: { host: string } }>('/api/machines/:host', { schema: { params: pathParams('host') }, preHandler: read }, async (req, reply) => {
    const inv = deps.getInventory();
    const m = inv.byHost.get(req.params.host) ?? inv.byMac.get(normaliseMac(req.params.host) ?? '');
    if (!m) return fail(reply, 404, 'E_UNKNOWN_MACHINE', `no machine ${req.params.host}`);
    return { host: m.host, macs: m.macs, role: m.role, bootOnce: m.bootOnce ?? null, ip: m.ip, addresses: m.addresses, last: deps.events.last(m.macs[0]!) ?? null, lease: deps.leases?.addressOf(m.macs[0]!) ?? null };
  });

  app.put<{ Params: { host: string }; Body: { role: string } }>('/api/machines/:host/role', {
    preHandler: admin,
    schema: { body: { type: 'object', required: ['role'], additionalProperties: false, properties: { role: { type: 'string', pattern: '^[A-Za-z0-9_-]+$', maxLength: 64 } } } },
  }, async (req, reply) => {
    if (!deps.assignRole) return fail(reply, 403, 'E_OFF', 'role changes are off in this server');
    try {
      await deps.assignRole(req.params.host, req.body.role);
    } catch (err) {
      if (err instanceof ProfileError) return fail(reply, 422, err.code, 'the edit would make the profiles invalid', { issues: err.issues.map(formatIssue) });
      if ((err as { code?: string }).code === 'E_NOT_FOUND') return fail(reply, 404, 'E_UNKNOWN_MACHINE', (err as Error).message);
      throw err;
    }
    return { host: req.params.host, role: req.body.role };
  });

  app.get('/api/leases', { preHandler: read }, async () => deps.leases?.list() ?? []);
}
