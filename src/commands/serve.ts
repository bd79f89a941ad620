/** rolecast serve: run every listener until SIGINT/SIGTERM; SIGHUP reloads the profiles. */
import { loadInventory } from '../inventory/index.js';
import { createLogger } from '../log.js';
import type { Flags } from '../cli.js';
import { applySite, serverConfig } from './common.js';

export async function cmdServe(_args: string[], flags: Flags): Promise<number> {
  const loaded = await serverConfig(flags);
  // Load once up front: a broken profile set stops the start with every error listed.
  const cfg = applySite(loaded, await loadInventory(loaded.cfg.profilesDir));
  const logger = createLogger(cfg.logLevel);
  // Loaded on demand: the other subcommands need no HTTP stack.
  const { startServer } = await import('../main.js');
  const running = await startServer(cfg, logger);
  const onHup = () => { void running.store.reload(); };
  process.on('SIGHUP', onHup);
  await new Promise<void>((resolve) => {
    const stop = (sig: string) => {
      logger.info({ signal: sig }, 'shutting down');
      resolve();
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  process.off('SIGHUP', onHup);
  await running.close();
  return 0;
}
