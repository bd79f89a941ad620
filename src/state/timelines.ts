/**
 * The in-memory boot timelines every EventLog keeps (the file journal, the PostgreSQL cache): the last
 * `perMac` events of each machine, and subscribers (the SSE stream) told of each event once.
 *
 * Bounded whatever arrives (issue 16: every new MAC from DHCP or an event POST grew the map for good):
 * MACs never heard with a host name (unknown machines, or invented ones) are capped at `maxUnknownMacs`,
 * the least recently heard dropped first, with `perUnknownMac` events each. A MAC heard with a host
 * becomes tracked and keeps `perMac`.
 */
import type { BootEvent } from '../events/types.js';
import type { Logger } from '../log.js';

export interface TimelineLimits {
  perMac: number;
  maxUnknownMacs: number;
  perUnknownMac: number;
}

export const DEFAULT_TIMELINE_LIMITS: TimelineLimits = { perMac: 200, maxUnknownMacs: 5000, perUnknownMac: 20 };

export class Timelines {
  private readonly byMac = new Map<string, BootEvent[]>();
  /** MACs never seen with a host, least recently heard first (Set insertion order). */
  private readonly unknown = new Set<string>();
  private readonly subscribers = new Set<(e: BootEvent) => void>();
  readonly limits: TimelineLimits;

  constructor(private readonly logger: Logger, limits: Partial<TimelineLimits> = {}) {
    this.limits = { ...DEFAULT_TIMELINE_LIMITS, ...limits };
  }

  /** Into the timeline only (loading history: subscribers are not told). */
  remember(e: BootEvent): void {
    const list = this.byMac.get(e.mac) ?? [];
    insertByTime(list, e);
    if (e.host) this.unknown.delete(e.mac);
    else if (this.unknown.has(e.mac) || list.length === 1) {
      this.unknown.delete(e.mac); // re-insert: most recently heard last
      this.unknown.add(e.mac);
    }
    // Trimmed in steps of a quarter of the cap, not by one on every event past it: a machine at its cap
    // (every machine DHCP hears often) would shift its whole list on each packet. Readers see the last `cap`.
    const over = list.length - this.capOf(e.mac);
    if (over > this.capOf(e.mac) >> 2) list.splice(0, over);
    this.byMac.set(e.mac, list);
    while (this.unknown.size > this.limits.maxUnknownMacs) {
      const oldest = this.unknown.values().next().value as string;
      this.unknown.delete(oldest);
      this.byMac.delete(oldest);
    }
  }

  /** Into the timeline and to every subscriber (one failing subscriber does not stop the others). */
  deliver(e: BootEvent): void {
    this.remember(e);
    for (const fn of this.subscribers) {
      try { fn(e); } catch (err) { this.logger.error({ err }, 'event subscriber failed'); }
    }
  }

  private capOf(mac: string): number {
    return this.unknown.has(mac) ? this.limits.perUnknownMac : this.limits.perMac;
  }

  /** The kept events of one MAC (the list may hold up to a quarter more, trimmed in steps). */
  private kept(mac: string, list: BootEvent[]): BootEvent[] {
    const cap = this.capOf(mac);
    return list.length > cap ? list.slice(list.length - cap) : list;
  }

  timeline(mac: string): BootEvent[] {
    const list = this.byMac.get(mac);
    return list ? [...this.kept(mac, list)] : [];
  }

  last(mac: string): BootEvent | undefined {
    return this.byMac.get(mac)?.at(-1);
  }

  /** Every kept event, oldest first (the file log's compaction writes these). */
  all(): BootEvent[] {
    return [...this.byMac].flatMap(([mac, list]) => this.kept(mac, list)).sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
  }

  subscribe(fn: (e: BootEvent) => void): () => void {
    this.subscribers.add(fn);
    return () => this.subscribers.delete(fn);
  }
}

/**
 * Into a MAC's list, oldest first by `at` (after any equal one): events come in as they happen, except
 * history loaded after a degraded start (the outage's own events are in the list already) and another
 * server's batch read late; both belong before what came later. Usually the last place: one comparison.
 */
function insertByTime(list: BootEvent[], e: BootEvent): void {
  let i = list.length;
  while (i > 0 && list[i - 1]!.at > e.at) i--;
  if (i === list.length) list.push(e);
  else list.splice(i, 0, e);
}

/** A boot event read back from a journal or a notification: the fields every consumer relies on are strings. */
export function isBootEvent(x: unknown): x is BootEvent {
  const e = x as BootEvent;
  return typeof e === 'object' && e !== null && typeof e.mac === 'string' && e.mac !== '' && typeof e.stage === 'string' && typeof e.at === 'string';
}
