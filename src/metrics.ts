/**
 * Prometheus metrics through prom-client, one registry per process. Hot paths (DHCP at thousands of packets
 * a second, TFTP) touch only pre-bound label children — a counter increment and, for latency, one histogram
 * observation; no label is ever built from packet content (MAC, file name), so cardinality stays fixed.
 * Values that already exist elsewhere (TFTP transfer counts, leases, inventory) are read at scrape time.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Inventory } from './inventory/types.js';
import type { LeaseView } from './leases.js';
import { inCidr } from './inventory/ip.js';
import type { BulkStats } from './http/bulk.js';

export const registry = new Registry();
collectDefaultMetrics({ register: registry, prefix: 'rolecast_' });
// prom-client names these gauges *_total, which Prometheus reserves for counters (promtool check metrics).
for (const n of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) registry.removeSingleMetric(`rolecast_${n}`);

const FAST = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1];

/** DHCP message types by RFC 2132 §9.6 code; anything else counts as "other". */
const DHCP_TYPES: Record<number, string> = { 1: 'discover', 3: 'request', 4: 'decline', 7: 'release', 8: 'inform' };
const dhcpRequests = new Counter({ name: 'rolecast_dhcp_requests_total', help: 'DHCP client messages received, by message type', labelNames: ['type'], registers: [registry] });
const dhcpDropped = new Counter({ name: 'rolecast_dhcp_dropped_total', help: 'DHCP packets dropped or failed, by reason (malformed, not_request, error)', labelNames: ['reason'], registers: [registry] });
const dhcpSeconds = new Histogram({ name: 'rolecast_dhcp_handle_seconds', help: 'Time to handle one DHCP request, receipt to reply', buckets: FAST, registers: [registry] });
const dhcpByType = new Map(Object.entries(DHCP_TYPES).map(([code, name]) => [Number(code), dhcpRequests.labels(name)]));
const dhcpOther = dhcpRequests.labels('other');
const dhcpDropBy = { malformed: dhcpDropped.labels('malformed'), not_request: dhcpDropped.labels('not_request'), error: dhcpDropped.labels('error') };

/** Hooks for src/dhcp/server.ts. */
export const dhcpMetrics = {
  request(type: number): void { (dhcpByType.get(type) ?? dhcpOther).inc(); },
  dropped(reason: keyof typeof dhcpDropBy): void { dhcpDropBy[reason].inc(); },
  /** `since` from performance.now() at receipt. */
  handled(since: number): void { dhcpSeconds.observe((performance.now() - since) / 1e3); },
  /** What the DHCP thread (src/dhcp/thread.ts) counted since its last batch. */
  add(d: { requests: Record<number, number>; dropped: Record<string, number>; seconds: number[] }): void {
    for (const [type, n] of Object.entries(d.requests)) (dhcpByType.get(Number(type)) ?? dhcpOther).inc(n);
    for (const [reason, n] of Object.entries(d.dropped)) if (reason in dhcpDropBy) dhcpDropBy[reason as keyof typeof dhcpDropBy].inc(n);
    for (const s of d.seconds) dhcpSeconds.observe(s);
  },
};

const tftpSeconds = new Histogram({ name: 'rolecast_tftp_transfer_seconds', help: 'TFTP transfer duration, request to last ACK (or failure)', buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60], registers: [registry] });

/** Hook for src/tftp/server.ts: one observation per finished transfer. */
export const tftpMetrics = {
  finished(since: bigint): void { tftpSeconds.observe(Number(process.hrtime.bigint() - since) / 1e9); },
};

export interface TftpCounts { active: number; completed: number; failed: number; refused: number; evicted: number; bytes: number }
const tftpSources = new Set<() => TftpCounts>();

/** A running TFTP server's counters, read at scrape time (nothing added to its packet path). */
export function addTftpSource(read: () => TftpCounts): () => void {
  tftpSources.add(read);
  return () => { tftpSources.delete(read); };
}

function sumTftp(): TftpCounts {
  const t: TftpCounts = { active: 0, completed: 0, failed: 0, refused: 0, evicted: 0, bytes: 0 };
  for (const read of tftpSources) for (const [k, v] of Object.entries(read())) if (k in t) t[k as keyof TftpCounts] += v;
  return t;
}

/** Counters mirrored from a source that counts on its own: raise by what it gained since the last scrape. */
function mirrored(name: string, help: string, labelNames: string[], read: () => Record<string, number>): void {
  const last = new Map<string, number>();
  new Counter({
    name, help, labelNames, registers: [registry],
    collect() {
      for (const [label, v] of Object.entries(read())) {
        const d = v - (last.get(label) ?? 0);
        if (d > 0) { if (labelNames.length) this.inc({ [labelNames[0]!]: label }, d); else this.inc(d); }
        last.set(label, Math.max(v, last.get(label) ?? 0));
      }
    },
  });
}

mirrored('rolecast_tftp_requests_total', 'TFTP read requests by outcome (completed, failed, refused, evicted)', ['result'], () => {
  const t = sumTftp();
  return { completed: t.completed, failed: t.failed, refused: t.refused, evicted: t.evicted };
});
mirrored('rolecast_tftp_bytes_total', 'Bytes sent over TFTP', [], () => ({ '': sumTftp().bytes }));
new Gauge({ name: 'rolecast_tftp_active_transfers', help: 'TFTP transfers in progress', registers: [registry], collect() { this.set(sumTftp().active); } });

const httpResponses = new Counter({ name: 'rolecast_http_responses_total', help: 'HTTP responses by route template and status class', labelNames: ['route', 'status'], registers: [registry] });
const httpSeconds = new Histogram({ name: 'rolecast_http_request_duration_seconds', help: 'HTTP request duration to the last byte handed to the socket, by route template', labelNames: ['route'], buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120], registers: [registry] });
const httpBytes = new Counter({ name: 'rolecast_http_bytes_total', help: 'Bytes sent over HTTP (Content-Length of responses)', registers: [registry] });
const httpErrors = new Counter({ name: 'rolecast_http_errors_total', help: 'HTTP responses with status >= 400, by route template and status code', labelNames: ['route', 'code'], registers: [registry] });

/** Route is the fastify route template (bounded), never the URL. */
export const httpMetrics = {
  response(route: string, status: number, seconds: number, bytes: number): void {
    httpResponses.inc({ route, status: `${Math.floor(status / 100)}xx` });
    httpSeconds.observe({ route }, seconds);
    if (bytes > 0) httpBytes.inc(bytes);
    if (status >= 400) httpErrors.inc({ route, code: String(status) });
  },
};

const boots = new Counter({ name: 'rolecast_boot_events_total', help: 'Boot events by stage (DHCP, TFTP, HTTP, phone-home)', labelNames: ['stage'], registers: [registry] });
/** Each stage's child, made once: inc({ stage }) hashed the label object on every event (four a DHCP exchange). */
const bootsByStage = new Map<string, ReturnType<typeof boots.labels>>();
export function bootEvent(stage: string): void {
  let c = bootsByStage.get(stage);
  if (!c) { c = boots.labels(stage); bootsByStage.set(stage, c); }
  c.inc();
}

const reloadFailures = new Counter({ name: 'rolecast_reload_failures_total', help: 'Profile reloads refused (the last good snapshot kept serving)', registers: [registry] });
export function reloadFailed(): void { reloadFailures.inc(); }

/** What the server is serving right now, read at scrape time. */
export interface ServingState {
  inventory: () => Inventory;
  leases?: () => LeaseView | undefined;
  sendfile: () => boolean;
  bulk?: () => BulkStats;
  /** The kernel's TCP memory pressure flag, when the bulk gate watches it (http.bulkWhen: pressure). */
  tcpPressure?: () => boolean;
}
let serving: ServingState | undefined;
export function setServingState(s: ServingState | undefined): void { serving = s; }

new Gauge({ name: 'rolecast_inventory_machines', help: 'Machines in the current inventory snapshot', registers: [registry], collect() { if (serving) this.set(serving.inventory().machines.length); } });
new Gauge({
  name: 'rolecast_inventory_info', help: 'The current inventory snapshot (version label: its content hash prefix); always 1', labelNames: ['version'], registers: [registry],
  collect() { this.reset(); if (serving) this.set({ version: serving.inventory().version.slice(0, 12) }, 1); },
});
new Gauge({
  name: 'rolecast_leases_in_use', help: 'Offered or bound DHCP leases, by inventory network', labelNames: ['network'], registers: [registry],
  collect() {
    this.reset();
    const view = serving?.leases?.();
    if (!serving || !view) return;
    const nets = serving.inventory().networks;
    const counts = new Map<string, number>(nets.map((n) => [n.name, 0]));
    for (const l of view.list()) {
      if (l.state !== 'bound' && l.state !== 'offered') continue;
      const net = nets.find((n) => inCidr(l.ip, n.cidr))?.name ?? 'none';
      counts.set(net, (counts.get(net) ?? 0) + 1);
    }
    for (const [network, n] of counts) this.set({ network }, n);
  },
});
new Gauge({
  name: 'rolecast_http_bulk_sends', help: 'Large image and rootfs sends (http.bulkSlots): sending with a slot, or queued for one', labelNames: ['state'], registers: [registry],
  collect() { const b = serving?.bulk?.(); if (b) { this.set({ state: 'sending' }, b.active); this.set({ state: 'queued' }, b.queued); } },
});
new Counter({
  name: 'rolecast_http_bulk_overran_total', help: 'Large sends that held a bulk slot for http.bulkHoldMs while others waited, and went on without it (a slow or stalled client)', registers: [registry],
  collect() { const b = serving?.bulk?.(); if (b) { this.reset(); this.inc(b.overran); } },
});
new Counter({
  name: 'rolecast_http_bulk_closed_total', help: 'Times the gate on large sends closed because the kernel reported TCP memory pressure (http.bulkWhen: pressure)', registers: [registry],
  collect() { const b = serving?.bulk?.(); if (b) { this.reset(); this.inc(b.closed); } },
});
new Gauge({
  name: 'rolecast_tcp_memory_pressure', help: '1 while the kernel reports TCP memory pressure (/proc/net/protocols), as last read by the gate on large sends', registers: [registry],
  collect() { if (serving?.tcpPressure) this.set(serving.tcpPressure() ? 1 : 0); },
});
new Gauge({ name: 'rolecast_sendfile_in_use', help: '1 when images and rootfs go out through the native sendfile(2) engine, 0 when they stream through Node', registers: [registry], collect() { this.set(serving?.sendfile() ? 1 : 0); } });
