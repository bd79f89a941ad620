/**
 * Prometheus text metrics: boots by stage (every boot event, whichever transport), HTTP responses by
 * route and status class, bytes sent over HTTP. Counters only; the registry is per app.
 */
import type { FastifyInstance } from 'fastify';
import type { EventLog } from '../state/types.js';

export class Metrics {
  private readonly counters = new Map<string, Map<string, number>>();
  private readonly help = new Map<string, string>();

  define(name: string, help: string): void {
    this.help.set(name, help);
    if (!this.counters.has(name)) this.counters.set(name, new Map());
  }

  add(name: string, labels: Record<string, string>, n = 1): void {
    const key = Object.entries(labels).sort().map(([k, v]) => `${k}="${v.replace(/["\\\n]/g, '_')}"`).join(',');
    const m = this.counters.get(name) ?? new Map<string, number>();
    m.set(key, (m.get(key) ?? 0) + n);
    this.counters.set(name, m);
  }

  render(): string {
    const out: string[] = [];
    for (const [name, m] of [...this.counters].sort(([a], [b]) => a.localeCompare(b))) {
      out.push(`# HELP ${name} ${this.help.get(name) ?? name}`, `# TYPE ${name} counter`);
      for (const [k, v] of [...m].sort(([a], [b]) => a.localeCompare(b))) out.push(`${name}${k ? `{${k}}` : ''} ${v}`);
    }
    return `${out.join('\n')}\n`;
  }
}

export function registerMetrics(app: FastifyInstance, events: EventLog): Metrics {
  const m = new Metrics();
  m.define('rolecast_boot_events_total', 'Boot events by stage (DHCP, TFTP, HTTP, phone-home)');
  m.define('rolecast_http_responses_total', 'HTTP responses by route and status class');
  m.define('rolecast_http_bytes_total', 'Bytes sent over HTTP');
  events.subscribe((e) => m.add('rolecast_boot_events_total', { stage: e.stage }));
  app.addHook('onResponse', async (req, reply) => {
    m.add('rolecast_http_responses_total', { route: req.routeOptions.url ?? 'unmatched', status: `${Math.floor(reply.statusCode / 100)}xx` });
    const len = Number(reply.getHeader('content-length') ?? 0);
    if (len > 0) m.add('rolecast_http_bytes_total', {}, len);
  });
  app.get('/metrics', { schema: { hide: true } }, async (_req, reply) => reply.type('text/plain; version=0.0.4').send(m.render()));
  return m;
}
