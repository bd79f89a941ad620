/**
 * GET /api/events as a resumable Server-Sent Events stream (HTML Living Standard §9.2): every boot event gets
 * an id `<epoch>-<seq>`; a client that reconnects with Last-Event-ID gets what it missed from a ring of the
 * last events, or, when that is gone (too old, or the server restarted: another epoch), an `event: reset`
 * telling it to re-read the full state. A comment line every heartbeat keeps proxies and NAT from closing an
 * idle stream and lets the client notice a dead one.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { BootEvent } from '../events/types.js';

export interface SseOptions {
  /** Events kept for resumption. */
  keep?: number;
  heartbeatMs?: number;
}

interface Numbered { seq: number; event: BootEvent }

export class EventStream {
  /** Distinguishes this process's ids from a previous run's. */
  readonly epoch = Date.now().toString(36);
  private seq = 0;
  private readonly ring: Numbered[] = [];
  private readonly clients = new Set<(n: Numbered) => void>();
  private readonly keep: number;
  readonly heartbeatMs: number;

  constructor(events: { subscribe(fn: (e: BootEvent) => void): () => void }, o: SseOptions = {}) {
    this.keep = o.keep ?? 1000;
    this.heartbeatMs = o.heartbeatMs ?? 15_000;
    events.subscribe((event) => {
      const n = { seq: ++this.seq, event };
      this.ring.push(n);
      if (this.ring.length > this.keep) this.ring.shift();
      for (const c of this.clients) c(n);
    });
  }

  /** Events after `lastId`, or undefined when they cannot all be given (reset). */
  since(lastId: string): Numbered[] | undefined {
    const m = /^([0-9a-z]+)-(\d+)$/.exec(lastId);
    if (!m || m[1] !== this.epoch) return undefined;
    const after = Number(m[2]);
    if (after > this.seq) return undefined;
    const first = this.ring[0]?.seq ?? this.seq + 1;
    if (after < first - 1) return undefined;
    return this.ring.filter((n) => n.seq > after);
  }

  private frame(n: Numbered): string {
    return `event: ${n.event.stage}\ndata: ${JSON.stringify(n.event)}\nid: ${this.epoch}-${n.seq}\n\n`;
  }

  serve(req: FastifyRequest, reply: FastifyReply): void {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    res.write(': rolecast boot events\nretry: 3000\n\n');
    const last = req.headers['last-event-id'];
    if (typeof last === 'string' && last !== '') {
      const missed = this.since(last);
      if (missed) for (const n of missed) res.write(this.frame(n));
      else res.write(`event: reset\ndata: ${JSON.stringify({ reason: 'events since Last-Event-ID are no longer kept; re-read the state' })}\n\n`);
    }
    const client = (n: Numbered) => { res.write(this.frame(n)); };
    this.clients.add(client);
    const beat = setInterval(() => res.write(': heartbeat\n\n'), this.heartbeatMs);
    beat.unref();
    req.raw.on('close', () => { clearInterval(beat); this.clients.delete(client); });
  }
}
