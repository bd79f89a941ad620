/**
 * The API beside the boot routes: boot events (timeline, live SSE stream; phone-home is in secrets.ts), one machine,
 * role changes (bearer token; same validation and YAML edit as `rolecast assign`), leases.
 */
import type { FastifyInstance } from 'fastify';
import type { Inventory } from '../inventory/types.js';
import type { State } from '../state/types.js';
import { normaliseMac } from '../boot/facts.js';
import { RolecastError, formatIssue } from '../errors.js';
import { assignRole } from '../inventory/edit.js';
import { pathParams, sourceAddress } from './common.js';
import { requireToken, type TokenSet } from './auth.js';
import { EventStream, type SseOptions } from './sse.js';

import type { ReloadResult } from '../inventory/watch.js';

export interface ApiDeps {
  getInventory: () => Inventory;
  state: State;
  tokens: TokenSet;
  /** Re-read the profiles after an edit (the watcher would too, a moment later). */
  reload?: () => Promise<unknown>;
  /** Event stream resumption buffer and heartbeat (tests shorten it). */
  sse?: SseOptions;
  /** POST /api/reload (`rolecast reload [--force]`): reload now; force applies one the drop guard held back. */
  reloadNow?: (force: boolean) => Promise<ReloadResult>;
}

const macParam = { type: 'object', properties: { mac: { type: 'string', maxLength: 32 } }, required: ['mac'] } as const;

export function registerApi(app: FastifyInstance, deps: ApiDeps): void {
  const { events, leases } = deps.state;
  // Everything that reveals the inventory, leases or boot history needs at least a read token.
  const read = requireToken(deps.tokens, 'read');
  const admin = requireToken(deps.tokens, 'admin');

  app.get<{ Params: { mac: string } }>('/api/machines/:mac/events', { schema: { params: macParam }, preHandler: read }, async (req) => {
    const mac = normaliseMac(req.params.mac) ?? deps.getInventory().byHost.get(req.params.mac)?.macs[0];
    if (!mac) throw new RolecastError('E_UNKNOWN_MACHINE', `no machine ${req.params.mac}`);
    return events.timeline(mac);
  });

  // Phone-home (POST /api/machines/:mac/events) is src/http/secrets.ts: signed with the boot's key.

  // Resumable (Last-Event-ID) with heartbeats: src/http/sse.ts.
  const stream = new EventStream(events, deps.sse);
  app.get('/api/events', { preHandler: read }, (req, reply) => stream.serve(req, reply));

  app.get<{ Params: { host: string } }>('/api/machines/:host', { schema: { params: pathParams('host') }, preHandler: read }, async (req) => {
    const inv = deps.getInventory();
    const m = inv.byHost.get(req.params.host) ?? inv.byMac.get(normaliseMac(req.params.host) ?? '');
    if (!m) throw new RolecastError('E_UNKNOWN_MACHINE', `no machine ${req.params.host}`);
    return { host: m.host, macs: m.macs, role: m.role, bootOnce: m.bootOnce ?? null, ip: m.ip, addresses: m.addresses, last: events.last(m.macs[0]!) ?? null, lease: leases.addressOf(m.macs[0]!) ?? null };
  });

  // `from` (optional): the role the caller saw. When the YAML says otherwise now, another edit came first
  // and this one is refused (409 E_CONFLICT) instead of silently overwriting it.
  const roleBody = { type: 'object', required: ['role'], additionalProperties: false, properties: {
    role: { type: 'string', pattern: '^[A-Za-z0-9_-]+$', maxLength: 64 },
    from: { type: 'string', pattern: '^[A-Za-z0-9_-]+$', maxLength: 64 },
  } } as const;
  app.put<{ Params: { host: string }; Body: { role: string; from?: string } }>('/api/machines/:host/role', {
    preHandler: admin,
    schema: { params: pathParams('host'), body: roleBody },
  }, async (req) => {
    try {
      await assignRole(deps.state.profiles, req.params.host, req.body.role, { who: `api ${sourceAddress(req)}`, ...(req.body.from !== undefined ? { ifCurrent: req.body.from } : {}) });
    } catch (err) {
      if (err instanceof RolecastError && err.code === 'E_NOT_FOUND') throw new RolecastError('E_UNKNOWN_MACHINE', err.message);
      throw err;
    }
    await deps.reload?.();
    return { host: req.params.host, role: req.body.role };
  });

  // Reload the profiles now (`rolecast reload [--force]`); force confirms one the drop guard held back.
  app.post<{ Body: { force?: boolean } | undefined }>('/api/reload', {
    preHandler: admin,
    schema: { body: { type: 'object', additionalProperties: false, properties: { force: { type: 'boolean' } } } },
  }, async (req, reply) => {
    if (!deps.reloadNow) throw new RolecastError('E_OFF', 'reloads are off in this server');
    const r = await deps.reloadNow(req.body?.force === true);
    const inv = deps.getInventory();
    const summary = { version: inv.version.slice(0, 12), machines: inv.machines.length };
    if (r.held) throw new RolecastError('E_RELOAD_HELD', `the new profiles would drop ${r.held.dropped.length} of ${r.held.machines} machines (${r.held.dropped.join(', ')})`, { details: { held: r.held, ...summary } });
    if (r.issues) throw new RolecastError('E_PROFILE', `profiles are invalid (${r.issues.length} errors); the last good snapshot keeps serving`, { details: { issues: r.issues.map(formatIssue), ...summary } });
    return reply.code(r.ok ? 200 : 500).send({ ok: r.ok, changed: r.changed ?? false, ...summary });
  });

  app.get('/api/leases', { preHandler: read }, async () => leases.list());
}
