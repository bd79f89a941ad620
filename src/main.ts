/**
 * Composition root: config, logger, inventory store, lease store, event store, the three listeners,
 * reload on change or SIGHUP, orderly shutdown. Everything here is wiring; decisions live in planBoot.
 */
import type { ServerConfig } from './config.js';
import { baseUrlOf } from './config.js';
import type { Logger } from './log.js';
import { InventoryStore } from './inventory/watch.js';
import { assignRole } from './inventory/edit.js';
import { LeaseStore } from './dhcp/leases.js';
import { startDhcpServer } from './dhcp/server.js';
import { startTftpServer } from './tftp/server.js';
import { createResolver } from './tftp/resolve.js';
import { EventStore } from './events/store.js';
import { buildApp } from './http/app.js';

export interface Running {
  close(): Promise<void>;
  store: InventoryStore;
  httpPort?: number;
  dhcpPort?: number;
  tftpPort?: number;
}

export async function startServer(cfg: ServerConfig, logger: Logger): Promise<Running> {
  const store = await InventoryStore.open(cfg.profilesDir, logger);
  store.watch();
  const getInventory = () => store.current();
  const baseUrl = baseUrlOf(cfg);
  const ctx = { baseUrl, server: cfg.address };
  const events = await EventStore.open(cfg.dataDir, logger);
  const leases = await LeaseStore.open(cfg.dataDir, logger);
  const closers: Array<() => Promise<void>> = [];
  const running: Running = { store, close: async () => { for (const c of closers.reverse()) await c(); } };
  try {
    if (cfg.http.enabled) {
      const app = await buildApp({ getInventory, config: cfg, events, leases, logger, assignRole: (h, r) => assignRole(cfg.profilesDir, h, r) });
      await app.listen({ host: cfg.http.host, port: cfg.http.port });
      const addr = app.server.address();
      running.httpPort = typeof addr === 'object' && addr ? addr.port : cfg.http.port;
      closers.push(() => app.close());
    }
    if (cfg.tftp.enabled) {
      const resolver = createResolver({ roots: cfg.tftp.roots, getInventory, ctx });
      const tftp = await startTftpServer({ config: cfg.tftp, address: cfg.address, resolver, events, logger });
      running.tftpPort = tftp.port;
      closers.push(() => tftp.close());
    }
    if (cfg.dhcp.mode !== 'off') {
      const dhcp = await startDhcpServer({ config: cfg.dhcp, address: cfg.address, baseUrl, getInventory, leases, events, logger });
      running.dhcpPort = dhcp.port;
      closers.push(() => dhcp.close());
    }
  } catch (err) {
    await running.close();
    throw err;
  }
  closers.unshift(async () => { store.close(); await leases.close(); await events.close(); });
  logger.info({ address: cfg.address, baseUrl, http: running.httpPort, tftp: running.tftpPort, dhcp: running.dhcpPort, dhcpMode: cfg.dhcp.mode, profiles: cfg.profilesDir, data: cfg.dataDir }, 'rolecast serving');
  return running;
}
