/**
 * The DHCP thread (src/dhcp/thread.ts explains why): the lease store (file or PostgreSQL) and the DHCP listener, on a copy
 * of the inventory snapshot. What the main thread keeps — lease changes for its mirror, boot events,
 * metric counts — leaves in one message per turn, after the turn's replies are queued.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { createLogger, prettyDestination, type Logger } from '../log.js';
import { destination } from 'pino';
import { FileLeaseStore } from '../state/file/leases.js';
import type { PgLink } from '../state/pg/link.js';
import type { LeaseCommitOptions, LeaseRecord, LeaseStore } from '../state/types.js';
import { InventoryBuilder } from '../inventory/index.js';
import type { Inventory } from '../inventory/types.js';
import { startDhcpServer, type DhcpMetricsSink, type DhcpServer } from './server.js';
import type { DhcpThreadInit, FromThread, MetricsDelta, ThreadEvent, ToThread } from './thread.js';
import { EventEncoder } from './thread-events.js';

const init = workerData as DhcpThreadInit;
const port = parentPort!;
const send = (m: FromThread) => port.postMessage(m);

/** Lines go straight to fd 1 from this thread (as the main thread's do), never through the main loop. */
function threadLogger(): Logger {
  const { level, pretty } = init.log;
  return createLogger(level, pretty ? prettyDestination(1) : destination({ dest: 1, sync: true }));
}

let isoMs = 0;
let iso = '';
/** The time as ISO 8601, made once per millisecond (several events a millisecond under load). */
function isoNow(): string {
  const ms = Date.now();
  if (ms !== isoMs) { isoMs = ms; iso = new Date(ms).toISOString(); }
  return iso;
}

/**
 * Longest an event or a count waits on this thread for others to share its message. Each message costs the
 * main thread a turn (the clone, the events journal's append) whatever it carries: at 5 ms, 1,000 exchanges a
 * second cost the main thread ~120 µs each, mostly in those 200 turns a second. Boot events are a log (the
 * timeline, the SSE stream): 50 ms late is still at once for whoever reads them.
 */
const EVENTS_MS = 50;

/** What leaves for the main thread: new bindings at the end of the turn, the rest within EVENTS_MS. */
class Outgoing {
  private leases: LeaseRecord[] = [];
  private readonly events = new EventEncoder();
  private metrics: MetricsDelta = { requests: {}, dropped: {}, seconds: [] };
  private counted = false;
  private scheduled = false;

  private timer: NodeJS.Timeout | undefined;

  private reset = false;

  lease(r: LeaseRecord, urgent = true): void { this.leases.push(r); this.schedule(urgent); }
  /** The store was reloaded: the main thread's mirror is replaced by `all` (changes after it follow). */
  resetTo(all: LeaseRecord[]): void { this.leases = [...all]; this.reset = true; this.schedule(true); }
  event(e: ThreadEvent): void {
    this.events.add(e, e.at ?? isoNow());
    this.schedule(false);
  }

  readonly sink: DhcpMetricsSink = {
    request: (type) => { this.metrics.requests[type] = (this.metrics.requests[type] ?? 0) + 1; this.count(); },
    dropped: (reason) => { this.metrics.dropped[reason] = (this.metrics.dropped[reason] ?? 0) + 1; this.count(); },
    handled: (since) => { this.metrics.seconds.push((performance.now() - since) / 1e3); this.count(); },
  };

  private count(): void { this.counted = true; this.schedule(false); }

  /**
   * An urgent lease change (a new binding: TFTP and HTTP look its address up on the main thread) goes at the
   * end of this turn (setImmediate: after the turn's replies), so the main thread's mirror has it about when
   * the client has its ACK. Everything else (events, counts, offers, renewals, releases) waits up to EVENTS_MS
   * to share a message: under load a turn is a packet or two, and a message per turn would cost the main
   * thread more than the events themselves.
   */
  private schedule(urgent: boolean): void {
    if (this.scheduled) return;
    if (urgent) {
      this.scheduled = true;
      clearTimeout(this.timer);
      this.timer = undefined;
      setImmediate(() => this.flush());
    } else {
      this.timer ??= setTimeout(() => this.flush(), EVENTS_MS);
    }
  }

  flush(): void {
    this.scheduled = false;
    clearTimeout(this.timer);
    this.timer = undefined;
    const events = this.events.length ? this.events.take() : undefined;
    if (!this.leases.length && !events && !this.counted && !this.reset) return;
    send({ t: 'batch', leases: this.leases, ...(events ? { events } : {}), ...(this.reset ? { reset: true } : {}), ...(this.counted ? { metrics: this.metrics } : {}) });
    this.leases = [];
    this.reset = false;
    if (this.counted) this.metrics = { requests: {}, dropped: {}, seconds: [] };
    this.counted = false;
  }
}

const logger = threadLogger();
const out = new Outgoing();
let store: LeaseStore;
/** The PostgreSQL link of the lease store (state.backend postgres): closed after it. */
let link: PgLink | undefined;
let current: Inventory | undefined;
let server: DhcpServer | undefined;
const building = new Map<number, InventoryBuilder>();

/** The store as the listener sees it: every change it takes is also mirrored to the main thread. */
function mirrored(s: FileLeaseStore): LeaseStore {
  return {
    addressOf: (mac) => s.addressOf(mac), list: () => s.list(), byMacLive: (mac) => s.byMacLive(mac), holder: (ip) => s.holder(ip),
    lastOf: (mac) => s.lastOf(mac), poolHint: (n) => s.poolHint(n), canAllocate: () => s.canAllocate(), close: () => s.close(),
    commit: async (r: LeaseRecord, opts?: LeaseCommitOptions) => {
      // Urgent: a new binding (the client's next request, to TFTP or HTTP, is looked up by its address on
      // the main thread). A renewal moves only the expiry, and an offer, release or decline does not give the
      // client an address to fetch with: those wait for the next batch instead of a message of their own.
      const prev = r.state === 'bound' ? s.lastOf(r.mac) : undefined;
      const extends_ = prev !== undefined && prev.state === r.state && prev.ip === r.ip && prev.host === r.host && prev.expiresAt <= r.expiresAt && Date.parse(prev.expiresAt) > Date.now();
      const ok = await s.commit(r, opts);
      if (ok) out.lease(r, r.state === 'bound' && !extends_);
      return ok;
    },
  };
}

function errorMessage(err: unknown): FromThread {
  const e = err as { message?: string; code?: string; errno?: number; syscall?: string };
  return { t: 'error', message: e.message ?? String(err), ...(e.code ? { code: e.code } : {}), ...(e.errno ? { errno: e.errno } : {}), ...(e.syscall ? { syscall: e.syscall } : {}) };
}

/**
 * This thread's nice value (Linux: setpriority on a thread id applies to that thread alone, setpriority(2)
 * NOTES). A negative one lets the kernel run DHCP ahead of the main thread's streaming when cores are short.
 */
function setNice(nice: number, log: Logger): void {
  if (!nice) return;
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    setPriority(tid, nice);
    log.debug({ tid, nice }, 'dhcp thread priority set');
  } catch (err) {
    log.info({ nice, code: (err as { code?: string }).code }, 'dhcp thread keeps the process\'s priority: a nice value below 0 needs root, CAP_SYS_NICE or RLIMIT_NICE (systemd LimitNICE=)');
  }
}

async function listen(m: Extract<ToThread, { t: 'listen' }>, leases: LeaseStore): Promise<void> {
  if (!current) throw new Error('dhcp thread: no inventory yet');
  const log = logger.child({ component: 'dhcp', thread: 'dhcp' });
  setNice(m.config.threadNice ?? 0, log);
  server = await startDhcpServer({
    config: m.config, address: m.address, baseUrl: m.baseUrl, getInventory: () => current!, leases,
    events: { emit: (e) => out.event(e) }, logger: log, metrics: out.sink,
    ...(m.repeatWindowMs !== undefined ? { repeatWindowMs: m.repeatWindowMs } : {}),
  });
  send({ t: 'listening', port: server.port });
}

async function close(): Promise<void> {
  try {
    await server?.close();
    await store.close();
    await link?.close();
  } catch (err) {
    logger.error({ err }, 'dhcp thread: closing failed');
  }
  out.flush();
  send({ t: 'closed' });
}

/**
 * The site's shared lease table, from this thread: a link of its own (migrated at start like any; a
 * database down at start is a link that starts down and reconnects by itself, as the main thread's).
 * Its cache's every change is mirrored, whoever made it.
 */
async function openPgLeases(url: string): Promise<LeaseStore> {
  const log = logger.child({ component: 'state', thread: 'dhcp' });
  // Loaded here: a file-backed thread never loads the pg driver.
  const [{ PgLink }, { PgLeaseStore }] = await Promise.all([import('../state/pg/link.js'), import('../state/pg/leases.js')]);
  link = await PgLink.open(url, log, { startDown: true, channels: ['rolecast_leases'] });
  try {
    const pgStore = await PgLeaseStore.open(link, log);
    pgStore.watch({ change: (r) => out.lease(r), reset: (all) => out.resetTo(all) });
    return pgStore;
  } catch (err) {
    await link.close();
    throw err;
  }
}

async function main(): Promise<void> {
  let leases: LeaseStore;
  try {
    if (init.pg) {
      store = await openPgLeases(init.pg.url);
      leases = store;
    } else {
      const file = await FileLeaseStore.open(init.dataDir, logger.child({ component: 'leases' }), Date.now, init.compactSlack !== undefined ? { compactSlack: init.compactSlack } : {});
      store = file;
      leases = mirrored(file);
    }
  } catch (err) {
    send(errorMessage(err));
    return;
  }
  port.on('message', (m: ToThread) => {
    if (m.t === 'inventory') {
      building.clear(); // an older snapshot still arriving is not wanted any more
      building.set(m.id, new InventoryBuilder(m.head));
      if (m.count === 0) { current = building.get(m.id)!.finish(); building.delete(m.id); }
    } else if (m.t === 'machines') {
      const b = building.get(m.id);
      if (!b) return;
      b.add(m.list);
      if (m.last) { current = b.finish(); building.delete(m.id); }
    } else if (m.t === 'listen') {
      listen(m, leases).catch((err: unknown) => send(errorMessage(err)));
    } else if (m.t === 'commit') {
      leases.commit(m.record, m.opts).then((ok) => send({ t: 'committed', id: m.id, ok }), (err: unknown) => send({ t: 'committed', id: m.id, ok: false, error: String(err) }));
    } else if (m.t === 'close') {
      void close();
    }
  });
  send({ t: 'leases', list: store.list() });
}

void main();
