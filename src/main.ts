/**
 * Composition root: config, logger, inventory store (watched; SIGHUP reloads), the HTTP listener,
 * orderly shutdown. Everything here is wiring; decisions live in planBoot.
 */
import type { ServerConfig } from './config.js';
import { baseUrlOf } from './config.js';
import type { Logger } from './log.js';
import { InventoryStore } from './inventory/watch.js';
import { buildApp } from './http/app.js';

export interface Running {
  close(): Promise<void>;
  store: InventoryStore;
  httpPort?: number;
}

export async function startServer(cfg: ServerConfig, logger: Logger): Promise<Running> {
  const store = await InventoryStore.open(cfg.profilesDir, logger);
  store.watch();
  const baseUrl = baseUrlOf(cfg);
  const closers: Array<() => Promise<void>> = [async () => store.close()];
  const running: Running = { store, close: async () => { for (const c of closers.splice(0).reverse()) await c(); } };
  try {
    if (cfg.http.enabled) {
      const app = await buildApp({ getInventory: () => store.current(), config: cfg, logger });
      await app.listen({ host: cfg.http.host, port: cfg.http.port });
      const addr = app.server.address();
      running.httpPort = typeof addr === 'object' && addr ? addr.port : cfg.http.port;
      closers.push(() => app.close());
    }
  } catch (err) {
    await running.close();
    throw err;
  }
  if (cfg.dhcp.mode !== 'off' || cfg.tftp.enabled) {
    logger.warn('DHCP and TFTP listeners are not part of this build yet: run beside dnsmasq (proxy DHCP + TFTP) for PXE');
  }
  logger.info({ address: cfg.address, baseUrl, http: running.httpPort, profiles: cfg.profilesDir, version: store.current().version.slice(0, 12) }, 'rolecast serving');
  return running;
}
