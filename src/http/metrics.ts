/**
 * GET /metrics (Prometheus text format, from prom-client's registry in src/metrics.ts) and the HTTP side of
 * the metrics: responses by route template and status, latency, bytes; boot events by stage.
 */
import type { FastifyInstance } from 'fastify';
import type { EventLog } from '../state/types.js';
import type { Inventory } from '../inventory/types.js';
import type { LeaseView } from '../leases.js';
import { bootEvent, httpMetrics, registry, setServingState } from '../metrics.js';
import type { BulkStats } from './bulk.js';

export interface MetricsDeps {
  events: EventLog;
  getInventory: () => Inventory;
  leases?: LeaseView;
  sendfile: () => boolean;
  /** The gate on large sends (src/http/bulk.ts). */
  bulk?: () => BulkStats;
  /** The kernel's TCP memory pressure flag, when the gate watches it. */
  tcpPressure?: () => boolean;
}

export function registerMetrics(app: FastifyInstance, deps: MetricsDeps): void {
  setServingState({ inventory: deps.getInventory, leases: () => deps.leases, sendfile: deps.sendfile, ...(deps.bulk ? { bulk: deps.bulk } : {}), ...(deps.tcpPressure ? { tcpPressure: deps.tcpPressure } : {}) });
  deps.events.subscribe((e) => bootEvent(e.stage));
  // A callback hook, not an async one: fastify then makes no promise per response for it.
  app.addHook('onResponse', (req, reply, done) => {
    httpMetrics.response(req.routeOptions.url ?? 'unmatched', reply.statusCode, reply.elapsedTime / 1000, Number(reply.getHeader('content-length') ?? 0));
    done();
  });
  app.get('/metrics', { schema: { hide: true } }, async (_req, reply) => reply.type(registry.contentType).send(await registry.metrics()));
}
