/**
 * DHCP on a thread of its own (dhcp.thread: auto). Under a boot storm the main event loop is busy with
 * HTTP and TFTP and waits for a core; DHCP requests queued behind that work were answered seconds late
 * and clients gave up (issue 15 target 6). On its own thread the DHCP path sleeps in epoll until a
 * request comes, and the kernel wakes a sleeping thread promptly, as it does dnsmasq.
 *
 * The thread runs the same listener (src/dhcp/server.ts) and the same pure handleDhcp/planBoot on a
 * copy of the inventory snapshot (sent again after every swap). The file lease store lives on it: the
 * thread is the journal's only writer, so a grant is fdatasync'd there before its reply leaves, with no
 * hop through the main loop. The main thread keeps a read-only mirror of the leases (TFTP, HTTP and the
 * API read addressOf/holder/list from it), fed with every change the thread commits; the thread's boot
 * events and metric counts come back in one message per turn. With PostgreSQL the thread opens a link of
 * its own (a pool, and LISTEN on rolecast_leases alone) and runs the PgLeaseStore there: a grant commits
 * in the database from the thread before its reply leaves, and every change its cache takes (this
 * server's, another server's, a reload after an outage) is mirrored to the main thread the same way.
 * Everything stays on the main thread when the thread cannot start.
 */
import type { Worker } from 'node:worker_threads';
import { startModuleWorker } from '../worker.js';
import type { DhcpConfig, ServerConfig } from '../config.js';
import type { EventSink } from '../events/types.js';
import type { Inventory, Machine } from '../inventory/types.js';
import type { InventoryHead } from '../inventory/index.js';
import { wantPretty, type Logger } from '../log.js';
import type { LeaseCommitOptions, LeaseRecord, LeaseStore } from '../state/types.js';
import { LeaseIndex } from '../state/lease-index.js';
import type { DhcpServer } from './server.js';
import { decodeEvents, type EventBatch } from './thread-events.js';

/** What the thread is started with (workerData). */
export interface DhcpThreadInit {
  dataDir: string;
  /** The main logger's level ('silent' keeps the thread silent too) and format. */
  log: { level: string; pretty: boolean };
  compactSlack?: number;
  /** The leases in the site's PostgreSQL (state.backend postgres) rather than the data directory's journal. */
  pg?: { url: string };
}

/** Counts since the last batch: requests by message type, drops by reason, handling times (seconds). */
export interface MetricsDelta {
  requests: Record<number, number>;
  dropped: Record<string, number>;
  seconds: number[];
}

export type ToThread =
  | { t: 'inventory'; id: number; head: InventoryHead; count: number }
  | { t: 'machines'; id: number; list: Machine[]; last: boolean }
  | { t: 'listen'; config: DhcpConfig; address: string; baseUrl: string; repeatWindowMs?: number }
  | { t: 'commit'; id: number; record: LeaseRecord; opts: LeaseCommitOptions }
  | { t: 'close' };

export type { ThreadEvent } from './thread-events.js';

export type FromThread =
  | { t: 'leases'; list: LeaseRecord[] }
  /** `reset`: `leases` is the whole store (reloaded after a database outage), not changes. */
  | { t: 'batch'; leases: LeaseRecord[]; reset?: boolean; events?: EventBatch; metrics?: MetricsDelta }
  | { t: 'listening'; port: number }
  | { t: 'committed'; id: number; ok: boolean; error?: string }
  | { t: 'error'; message: string; code?: string; errno?: number; syscall?: string }
  | { t: 'closed' };

/** Machines per message when a snapshot is copied to the thread (~1-2 ms of cloning each on this side). */
const CHUNK = 1000;

/** Where the thread sends what the main thread keeps: events, metrics. */
export interface DhcpThreadSinks {
  events: EventSink;
  metrics: { add(d: MetricsDelta): void };
}

/**
 * The thread's young generation (MB; V8 sizes a worker's at up to 48). What the thread keeps is small
 * (a snapshot of 10,000 machines and the leases: ~20 MB after a full GC) and a DHCP exchange's garbage
 * dies young, but with the default each scavenge waited for ~32 MB of it: that, and the old space grown
 * to match, was most of the thread's 50-145 MB heap under 1000 requests/s (issue 15: 250 MB RSS).
 * A few MB keep scavenges short and frequent.
 */
export const DHCP_YOUNG_MB = 8;

function startWorker(init: DhcpThreadInit): Worker {
  return startModuleWorker(new URL('./thread-worker.js', import.meta.url), init, { maxYoungGenerationSizeMb: DHCP_YOUNG_MB });
}

/** An Error as node:dgram would have thrown it (code, errno, syscall), so startup.ts explains a bind failure. */
function errorOf(m: Extract<FromThread, { t: 'error' }>): Error {
  return Object.assign(new Error(m.message), { ...(m.code ? { code: m.code } : {}), ...(m.errno ? { errno: m.errno } : {}), ...(m.syscall ? { syscall: m.syscall } : {}) });
}

/**
 * The main thread's view of the thread's lease store: reads from a mirror of every change the thread
 * committed; a commit (nothing on the main thread makes one today) is done by the thread's store.
 */
class MirroredLeases implements LeaseStore {
  readonly index = new LeaseIndex(Date.now);
  constructor(private readonly commitVia: (r: LeaseRecord, o: LeaseCommitOptions) => Promise<boolean>, private readonly closeVia: () => Promise<void>, private readonly allocating: () => boolean) {}
  addressOf(mac: string) { return this.index.addressOf(mac); }
  list() { return this.index.list(); }
  byMacLive(mac: string) { return this.index.byMacLive(mac); }
  holder(ip: string) { return this.index.holder(ip); }
  lastOf(mac: string) { return this.index.lastOf(mac); }
  poolHint(): number | undefined { return undefined; }
  canAllocate() { return this.allocating(); }
  commit(change: LeaseRecord, opts: LeaseCommitOptions = {}) { return this.commitVia(change, opts); }
  close() { return this.closeVia(); }
}

export class DhcpThread {
  readonly leases: LeaseStore;
  private readonly mirror: MirroredLeases;
  private sinks: DhcpThreadSinks | undefined;
  private inventoryId = 0;
  private commits = new Map<number, { resolve(ok: boolean): void; reject(e: unknown): void }>();
  private nextCommit = 0;
  private waiting: { resolve(m: FromThread): void; reject(e: unknown): void; want: FromThread['t'] } | undefined;
  private exited = false;
  private closing: Promise<void> | undefined;

  private constructor(private readonly worker: Worker, private readonly logger: Logger, canAllocate: () => boolean) {
    this.mirror = new MirroredLeases((r, o) => this.commit(r, o), () => this.close(), canAllocate);
    this.leases = this.mirror;
    worker.on('message', (m: FromThread) => this.received(m));
    worker.on('error', (err) => {
      this.logger.error({ err }, 'dhcp thread failed');
      this.fail(err);
    });
    worker.on('exit', (code) => {
      this.exited = true;
      if (!this.closing) this.logger.error({ code }, 'dhcp thread exited: DHCP is not answering (restart rolecast)');
      this.fail(new Error(`dhcp thread exited (${code})`));
    });
  }

  /**
   * Starts the thread and opens the lease store on it (the journal, or a PostgreSQL link); resolves once
   * the leases are loaded (mirrored here). `canAllocate`: the mirror's answer (the main thread's link).
   */
  static async open(init: DhcpThreadInit, logger: Logger, opts: { canAllocate?: () => boolean } = {}): Promise<DhcpThread> {
    const t = new DhcpThread(startWorker(init), logger, opts.canAllocate ?? (() => true));
    try {
      await t.next('leases');
    } catch (err) {
      await t.worker.terminate();
      throw err;
    }
    return t;
  }

  private fail(err: unknown): void {
    this.waiting?.reject(err);
    this.waiting = undefined;
    for (const c of this.commits.values()) c.reject(err);
    this.commits.clear();
  }

  private next(want: FromThread['t']): Promise<FromThread> {
    if (this.exited) return Promise.reject(new Error('dhcp thread is not running'));
    this.waiting?.reject(new Error(`dhcp thread: ${want} asked for before ${this.waiting.want} came`));
    return new Promise((resolve, reject) => { this.waiting = { resolve, reject, want }; });
  }

  private received(m: FromThread): void {
    if (m.t === 'batch') {
      if (m.reset) this.mirror.index.clear();
      for (const r of m.leases) this.mirror.index.apply(r);
      if (this.sinks) {
        if (m.events) { const sink = this.sinks.events; decodeEvents(m.events, (e) => sink.emit(e)); }
        if (m.metrics) this.sinks.metrics.add(m.metrics);
      }
      return;
    }
    if (m.t === 'leases') for (const r of m.list) this.mirror.index.apply(r);
    if (m.t === 'committed') {
      const c = this.commits.get(m.id);
      this.commits.delete(m.id);
      if (m.error !== undefined) c?.reject(new Error(m.error)); else c?.resolve(m.ok);
      return;
    }
    const w = this.waiting;
    if (!w) return;
    this.waiting = undefined;
    if (m.t === 'error') w.reject(errorOf(m));
    else if (m.t === w.want) w.resolve(m);
    else w.reject(new Error(`dhcp thread: ${m.t} where ${w.want} was expected`));
  }

  private commit(record: LeaseRecord, opts: LeaseCommitOptions): Promise<boolean> {
    if (this.exited) return Promise.reject(new Error('dhcp thread is not running'));
    const id = this.nextCommit++;
    const done = new Promise<boolean>((resolve, reject) => this.commits.set(id, { resolve, reject }));
    this.post({ t: 'commit', id, record, opts });
    return done;
  }

  private post(m: ToThread): void {
    if (!this.exited) this.worker.postMessage(m);
  }

  /**
   * Copies a snapshot to the thread, a slice per turn; the thread swaps to it once the last slice is in.
   * Resolves once the last slice is posted (or a newer snapshot took over).
   */
  sendInventory(inv: Inventory): Promise<void> {
    const id = ++this.inventoryId;
    const { site, networks, images, sites, roles, secrets, discovery, profilesDir, version } = inv;
    this.post({ t: 'inventory', id, head: { site, networks, images, sites, roles, secrets, discovery, profilesDir, version }, count: inv.machines.length });
    return new Promise((resolve) => {
      const slice = (from: number) => {
        if (id !== this.inventoryId) { resolve(); return; } // a newer snapshot is on its way: this one is not wanted
        const last = from + CHUNK >= inv.machines.length;
        this.post({ t: 'machines', id, list: inv.machines.slice(from, from + CHUNK), last });
        if (last) resolve(); else setImmediate(() => slice(from + CHUNK));
      };
      slice(0);
    });
  }

  /** Binds the DHCP sockets on the thread and answers from there. */
  async listen(o: { config: DhcpConfig; address: string; baseUrl: string; inventory: Inventory; sinks: DhcpThreadSinks; repeatWindowMs?: number }): Promise<DhcpServer> {
    this.sinks = o.sinks;
    // 'listen' after the snapshot's last slice: above CHUNK machines the thread had no inventory yet
    // when it came and the start failed ("dhcp thread: no inventory yet").
    await this.sendInventory(o.inventory);
    const answered = this.next('listening');
    this.post({ t: 'listen', config: o.config, address: o.address, baseUrl: o.baseUrl, ...(o.repeatWindowMs !== undefined ? { repeatWindowMs: o.repeatWindowMs } : {}) });
    const m = await answered as Extract<FromThread, { t: 'listening' }>;
    return { port: m.port, close: () => this.close() };
  }

  /** Closes the sockets and the lease journal on the thread (pending commits finish first), then ends it. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.exited) return;
      const closed = this.next('closed').catch(() => undefined);
      this.post({ t: 'close' });
      const timer = setTimeout(() => { void this.worker.terminate(); }, 10_000);
      await closed;
      clearTimeout(timer);
      await this.worker.terminate();
    })();
    return this.closing;
  }
}

/**
 * DHCP's own thread with the lease journal open on it (file backend, dhcp.thread: auto); undefined when
 * DHCP is off or the thread cannot start (DHCP then answers on the main thread). `serve` starts it while
 * the profiles load: its start (a second isolate loading the DHCP modules) overlaps the parse.
 */
export async function openDhcpThread(cfg: ServerConfig, logger: Logger): Promise<DhcpThread | undefined> {
  if (cfg.state.backend === 'postgres' || cfg.dhcp.mode === 'off' || cfg.dhcp.thread !== 'auto') return undefined;
  try {
    return await DhcpThread.open({ dataDir: cfg.dataDir, log: { level: logger.level, pretty: wantPretty() } }, logger);
  } catch (err) {
    logger.warn({ err }, 'dhcp thread cannot start: DHCP answers on the main thread');
    return undefined;
  }
}
