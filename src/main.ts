/**
 * Composition root: config, logger, inventory store (watched; SIGHUP reloads), the HTTP listener,
 * orderly shutdown. Everything here is wiring; decisions live in planBoot.
 */
import type { ServerConfig } from './config.js';
import { baseUrlOf } from './config.js';
import { wantPretty, type Logger } from './log.js';
import { InventoryStore } from './inventory/watch.js';
import type { Inventory } from './inventory/types.js';
import type { HashContext } from './inventory/offthread.js';
import { expectHashes, warmContentHashes, warmMachineRows } from './http/machines.js';
import { warmFleetRows } from './http/fleet.js';
import { buildApp } from './http/app.js';
import { startTftpServer } from './tftp/server.js';
import { createResolver } from './tftp/resolve.js';
import { setBootOnce } from './inventory/edit.js';
import { ALL_PARTS, openState, type StatePart } from './state/open.js';
import type { State } from './state/types.js';
import { startDhcpServer } from './dhcp/server.js';
import { startRouterAdvertiser } from './ra.js';
import { targetUser } from './privdrop.js';
import { listening } from './startup.js';
import { addTftpSource, dhcpMetrics } from './metrics.js';
import { DhcpThread, openDhcpThread } from './dhcp/thread.js';
import { IMAGE_FIX, missingImages } from './imagecheck.js';
import { serverKey } from './serverkey.js';
import { BootTokens } from './boottokens.js';
import { PowerService } from './bmc/service.js';
import { ConsoleLogStore } from './bmc/consolelog.js';
import { ConsoleRecorder } from './bmc/recorder.js';
import { join } from 'node:path';
import { loadImageView } from './images/view.js';
import { EventLogLevels } from './events/log-level.js';


export interface Running {
  close(): Promise<void>;
  store: InventoryStore;
  httpPort?: number;
  tftpPort?: number;
  dhcpPort?: number;
  state: State;
}

/** The state and the inventory: the data and profiles directories (watched), or the site's PostgreSQL. */
export interface Site {
  state: State;
  store: InventoryStore;
  /** DHCP's own thread, holding the lease journal (file backend, dhcp.thread: auto). */
  dhcpThread?: DhcpThread;
}

export async function openSite(cfg: ServerConfig, logger: Logger, loaded?: Inventory, dhcpThread?: Promise<DhcpThread | undefined>): Promise<Site> {
  // The API's render context: reloads hash every machine's files with it on the loader thread.
  const hashWith = cfg.http.enabled ? async () => ({ baseUrl: baseUrlOf(cfg), server: cfg.address, serverKey: await serverKey(cfg.dataDir) }) : undefined;
  if (cfg.state.backend === 'postgres') return openPgSiteWithThread(cfg, logger, hashWith);
  let store: InventoryStore;
  try {
    store = await InventoryStore.open(cfg.profilesDir, logger, { ...cfg.reload, ...(hashWith ? { hashWith } : {}) }, undefined, loaded);
  } catch (err) {
    await (await dhcpThread)?.close();
    throw err;
  }
  store.watch();
  try {
    return { store, ...await openFileState(cfg, logger, dhcpThread) };
  } catch (err) {
    store.close();
    throw err;
  }
}

/**
 * The postgres site; with DHCP on its own thread (dhcp.thread: auto), the lease store runs there on a
 * link of its own and state.leases is the main thread's mirror of it (src/dhcp/thread.ts). Pool
 * allocations follow the main link as /healthz does; the thread's store refuses them by its own.
 */
async function openPgSiteWithThread(cfg: ServerConfig, logger: Logger, hashWith: (() => Promise<HashContext>) | undefined): Promise<Site> {
  const { openPgSite } = await import('./state/pg/site.js');
  // The hashes are looked up by render context (expectHashes): a context the server ends up not using
  // (its address from the site's profiles, applied after this) only means the API works them out itself.
  const hashing = hashWith ? { hashing: { ctx: hashWith, remember: expectHashes } } : {};
  if (cfg.dhcp.mode === 'off' || cfg.dhcp.thread !== 'auto') return openPgSite(cfg, logger, hashing);
  const site = await openPgSite(cfg, logger, { leases: false, ...hashing });
  const { state } = site;
  let thread: DhcpThread;
  try {
    thread = await DhcpThread.open({ dataDir: cfg.dataDir, log: { level: logger.level, pretty: wantPretty() }, pg: { url: cfg.state.url! } }, logger, { canAllocate: () => state.link.up });
  } catch (err) {
    logger.warn({ err }, 'dhcp thread cannot start: DHCP answers on the main thread');
    const { PgLeaseStore } = await import('./state/pg/leases.js');
    const leases = await PgLeaseStore.open(state.link, logger.child({ component: 'state' }));
    return { ...site, state: { ...state, leases, close: async () => { await leases.close(); await state.close(); } } };
  }
  return { ...site, state: { ...state, leases: thread.leases, close: async () => { await thread.close(); await state.close(); } }, dhcpThread: thread };
}

/**
 * The file state; with DHCP on its own thread (dhcp.thread: auto), the lease journal is opened there and
 * state.leases is the main thread's mirror of it (src/dhcp/thread.ts).
 */
async function openFileState(cfg: ServerConfig, logger: Logger, early?: Promise<DhcpThread | undefined>): Promise<{ state: State; dhcpThread?: DhcpThread }> {
  const dhcpThread = await (early ?? openDhcpThread(cfg, logger));
  if (!dhcpThread) return { state: await openState(cfg, { logger }) };
  const thread = dhcpThread;
  let rest: Omit<State, 'leases'>;
  try {
    rest = await openState(cfg, { logger, parts: ALL_PARTS.filter((p): p is Exclude<StatePart, 'leases'> => p !== 'leases') });
  } catch (err) {
    await thread.close();
    throw err;
  }
  const state: State = { ...rest, leases: thread.leases, close: async () => { await thread.close(); await rest.close(); } };
  return { state, dhcpThread: thread };
}

export interface StartOptions {
  /** The files hashes of `loaded`'s machines under the API's render context, coming from the loader thread. */
  hashes?: Promise<readonly (string | null)[]>;
  /** The DHCP thread, started (openDhcpThread) while the profiles loaded. */
  dhcpThread?: Promise<DhcpThread | undefined>;
}

export async function startServer(cfg: ServerConfig, logger: Logger, loaded?: Inventory, site?: Site, opts: StartOptions = {}): Promise<Running> {
  const { store, state, dhcpThread } = site ?? await openSite(cfg, logger, loaded, opts.dhcpThread);
  // Images the inventory names but this server lacks: said at start and after every reload (and on /healthz).
  const reportImages = (inv: Inventory) => {
    const missing = missingImages(inv, cfg.imagesDir);
    if (missing.length) logger.warn({ missing, imagesDir: cfg.imagesDir, fix: IMAGE_FIX }, `${missing.length} image(s) missing: machines that need them cannot boot (${missing.map((m) => m.name).join(', ')})`);
  };
  reportImages(store.current());
  store.onSwap(reportImages);
  const baseUrl = baseUrlOf(cfg);
  // /api/machines needs every machine's content hash and planned row: for a reload, made ready before the
  // new snapshot goes live (from the hashes the loader thread worked out); at start, in the background.
  // Same render context and image view as the API's, so it finds them.
  const key = cfg.http.enabled ? await serverKey(cfg.dataDir) : undefined;
  const renderCtx = { baseUrl, server: cfg.address, ...(key ? { serverKey: key } : {}) };
  // The API's rows too (src/http/machines.ts warmMachineRows, src/http/fleet.ts warmFleetRows): a first
  // GET /api/machines or /api/fleet only appends each machine's live fields. At start, while the loader thread's hashes are coming, the rows without
  // hashes that requests get meanwhile are made first.
  const warm = async (inv: Inventory, hashes?: Promise<readonly (string | null)[]>, pendingReady?: () => void) => {
    if (hashes) expectHashes(inv, renderCtx, hashes);
    try {
      const images = await loadImageView(inv, cfg.imagesDir).catch(() => undefined);
      const ctx = { ...renderCtx, ...(images ? { images } : {}) };
      if (pendingReady) await warmMachineRows(inv, ctx, { pending: true }).catch(() => undefined);
      await warmFleetRows(inv);
      pendingReady?.();
      await warmContentHashes(inv, ctx, hashes ?? store.hashesOf(inv));
      await warmMachineRows(inv, ctx);
    } finally {
      pendingReady?.();
    }
  };
  store.beforeSwap((inv) => warm(inv));
  // Taken before anything listens: a request meanwhile waits for these hashes rather than rendering, and
  // the rows it gets until they arrive are made before the listeners open (~40 ms at 10,000 machines).
  if (opts.hashes && loaded === store.current()) {
    let ready!: () => void;
    const pendingRows = new Promise<void>((resolve) => { ready = resolve; });
    void warm(loaded, opts.hashes, ready).catch(() => undefined);
    await pendingRows;
  }
  // One sink for DHCP, TFTP, HTTP and phone-home: every boot event lands in the per-machine timeline
  // and, once, in the log: at info one line per boot stage (an ACK, a loader, a script, a kernel...);
  // the per-packet DHCP steps before an ACK, and a DHCP stage the same MAC reached within the last second, at
  // debug (src/events/log-level.ts), where a boot storm's (or a load test's) thousands of packets a second
  // would otherwise spend a sixth of the DHCP path writing log lines.
  // Events another server recorded (shared state) are in its log, not this one's.
  const logLevels = new EventLogLevels();
  state.events.subscribe((e) => {
    if (e.server !== undefined) return;
    const level = logLevels.level(e, Date.now());
    if (logger.isLevelEnabled(level)) logger[level]({ event: e.stage, mac: e.mac, host: e.host, detail: e.detail, address: e.address, ...(e.verified !== undefined ? { verified: e.verified } : {}) }, 'boot event');
  });
  // Boot-once (maintenance): once the target's boot config has gone out, the machine goes back to its
  // role — the YAML loses its boot_once key and the snapshot reloads. Only the target that was served is
  // cleared: one set again meanwhile stays (E_CONFLICT, logged at info).
  const bootOnceServed = (host: string, target: string) => {
    setBootOnce(state.profiles, host, null, { ifCurrent: target, who: 'rolecast (boot-once served)' }).then(() => store.reload())
      .then(() => logger.info({ host, target }, 'boot-once target served; back to its role on the next boot'))
      .catch((err: unknown) => {
        if ((err as { code?: string }).code === 'E_CONFLICT') logger.info({ host, target }, 'boot_once changed since it was served: left as it is');
        else logger.error({ err, host }, 'cannot clear boot_once');
      });
  };
  const closers: Array<() => Promise<void>> = [async () => store.close(), () => state.close()];
  const running: Running = { store, state, close: async () => { for (const c of closers.splice(0).reverse()) await c(); } };
  try {
    if (cfg.http.enabled) {
      const power = new PowerService({ policy: { timeoutMs: cfg.bmc.timeoutMs, attempts: cfg.bmc.attempts }, maxConcurrent: cfg.bmc.maxConcurrent, events: state.events, log: state.power });
      // Boot consoles over Serial over LAN, under the same BMC caps as the power calls (src/bmc/recorder.ts).
      const consoles = new ConsoleLogStore(join(cfg.dataDir, 'console'), cfg.bmc.console.maxBytes);
      const recorder = new ConsoleRecorder({ getInventory: () => store.current(), events: state.events, limiter: power.limiter, policy: power.policy, logs: consoles, config: cfg.bmc.console, logger: logger.child({ component: 'console' }) });
      recorder.start();
      closers.push(() => recorder.close());
      const app = await buildApp({ getInventory: () => store.current(), config: cfg, logger, state, serverKey: await serverKey(cfg.dataDir), reload: () => store.reload(), reloadNow: (force) => store.reload({ force }), lastReload: () => store.lastReload(), bootOnceServed, power, consoles });
      await listening('HTTP', 'tcp', cfg.http.host, cfg.http.port, () => app.listen({ host: cfg.http.host, port: cfg.http.port }));
      const addr = app.server.address();
      running.httpPort = typeof addr === 'object' && addr ? addr.port : cfg.http.port;
      closers.push(() => app.close());
    }
    if (cfg.tftp.enabled) {
      // PXELINUX and GRUB configs over TFTP carry the boot token too (issue 16), from the same boot records.
      const tokens = new BootTokens({ key: await serverKey(cfg.dataDir), boots: state.boots, leases: state.leases, config: cfg.secrets, dhcpAuthoritative: cfg.dhcp.mode === 'authoritative' });
      const resolver = createResolver({ roots: cfg.tftp.roots, imagesDir: cfg.imagesDir, getInventory: () => store.current(), ctx: { baseUrl, server: cfg.address }, bootOnceServed, leaseHolder: (ip) => state.leases.holder(ip)?.mac, mintToken: (plan, address) => tokens.mint(plan, address) });
      const tftp = await listening('TFTP', 'udp', cfg.tftp.bind, cfg.tftp.port, () => startTftpServer({ config: cfg.tftp, resolver, events: state.events, logger: logger.child({ component: 'tftp' }) }));
      running.tftpPort = tftp.port;
      const unregister = addTftpSource(() => tftp.stats());
      closers.push(async () => { unregister(); await tftp.close(); });
    }
    if (cfg.dhcp.mode !== 'off') {
      const dhcp = await listening('DHCP', 'udp', cfg.dhcp.bind, cfg.dhcp.port, () => dhcpThread
        ? dhcpThread.listen({ config: cfg.dhcp, address: cfg.address, baseUrl, inventory: store.current(), sinks: { events: state.events, metrics: dhcpMetrics } })
        : startDhcpServer({ config: cfg.dhcp, address: cfg.address, baseUrl, getInventory: () => store.current(), leases: state.leases, events: state.events, logger: logger.child({ component: 'dhcp' }), metrics: dhcpMetrics }));
      // The thread answers from its own copy of the snapshot: every new one goes to it as it goes live here.
      if (dhcpThread) store.onSwap((inv) => dhcpThread.sendInventory(inv));
      running.dhcpPort = dhcp.port;
      closers.push(() => dhcp.close());
      // iPXE waits ~13 s for IPv6 after its DHCP unless an RA says there is no router (src/ra.ts).
      const ra = await startRouterAdvertiser({ config: cfg.ra, address: cfg.address, dataDir: cfg.dataDir, user: process.getuid?.() === 0 ? targetUser(cfg.user)?.name : undefined, logger: logger.child({ component: 'ra' }) });
      if (ra) closers.push(() => ra.close());
    }
  } catch (err) {
    await running.close();
    throw err;
  }
  if (!opts.hashes) void warm(store.current());
  logger.info({ address: cfg.address, baseUrl, http: running.httpPort, tftp: running.tftpPort, dhcp: running.dhcpPort, dhcpMode: cfg.dhcp.mode, profiles: cfg.profilesDir, version: store.current().version.slice(0, 12) }, 'rolecast serving');
  return running;
}
