/** rolecast serve: run every listener until SIGINT/SIGTERM; SIGHUP reloads the profiles. */
import { createLogger } from '../log.js';
import { dropPrivileges, targetUser, warnIfReadOnly } from '../privdrop.js';
import { FLAGS, str, type CommandSpec, type Flags } from './spec.js';
import { applySite, loadProfilesForServe, serverConfig } from './common.js';
import { baseUrlOf } from '../config.js';
import { serverKey } from '../serverkey.js';
import { openDhcpThread } from '../dhcp/thread.js';

export async function cmdServe(_args: string[], flags: Flags): Promise<number> {
  const loaded = await serverConfig(flags);
  const logger = createLogger(loaded.cfg.logLevel);
  // postgres: the state and the profiles come from the site's database (opened here: the site's address
  // and port may come from its profiles).
  const site = loaded.cfg.state.backend === 'postgres' ? await (await import('../main.js')).openSite(loaded.cfg, logger) : undefined;
  // Loaded on demand (the other subcommands need no HTTP stack): imported while the profiles load.
  const mainModule = import('../main.js');
  mainModule.catch(() => undefined);
  // DHCP's thread starts meanwhile (file state): it loads its modules and the lease journal while the
  // profiles are parsed, rather than after (~0.5 s of a 10,000-machine start).
  const dhcpThread = site ? undefined : openDhcpThread(loaded.cfg, logger);
  const closeThread = async () => { await (await dhcpThread)?.close(); };
  // Load once up front: a broken profile set stops the start with every error listed.
  let first: Awaited<ReturnType<typeof loadProfilesForServe>>;
  try {
    first = site ? { inv: site.store.current() } : await loadProfilesForServe(loaded);
  } catch (err) {
    await closeThread();
    throw err;
  }
  const inv = first.inv;
  const cfg = applySite(loaded, inv);
  const u = str(flags, 'user');
  if (u) cfg.user = u;
  // Checked before anything binds: a user that does not exist stops the start with nothing half-running.
  let account: ReturnType<typeof targetUser> | undefined;
  try {
    account = process.getuid?.() === 0 ? targetUser(cfg.user) : undefined;
  } catch (err) {
    site?.store.close();
    first.load?.close();
    await site?.state.close();
    await closeThread();
    throw err;
  }
  // The loader thread goes on to hash every machine's files for the API while the server starts.
  const hashes = first.load && cfg.http.enabled
    ? serverKey(cfg.dataDir).then((key) => first.load!.hashes({ baseUrl: baseUrlOf(cfg), server: cfg.address, serverKey: key })).finally(() => first.load!.close())
    : undefined;
  if (!hashes) first.load?.close();
  hashes?.catch(() => undefined); // a failed hand-over only means the API works them out itself
  const { startServer } = await mainModule;
  const running = await startServer(cfg, logger, inv, site, { ...(hashes ? { hashes } : {}), ...(dhcpThread ? { dhcpThread } : {}) });
  try {
    dropPrivileges(account, [cfg.dataDir], logger);
  } catch (err) {
    await running.close();
    throw err;
  }
  if (account && !site) warnIfReadOnly(cfg.profilesDir, 'API role changes and boot-once clearing edit machines.yaml there', logger);
  // SIGHUP is the operator asking: it also confirms a reload the drop guard held back.
  const onHup = () => { void running.store.reload({ force: true }); };
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

export const serveCommand: CommandSpec = {
  name: 'serve', summary: 'run DHCP, TFTP and HTTP for the provisioning address', maxArgs: 0, run: cmdServe,
  flags: {
    config: FLAGS.config, profiles: FLAGS.profiles, data: FLAGS.data, images: FLAGS.images,
    address: { value: 'IP', help: 'provisioning address: DHCP server identifier, next-server, URLs (default: the site profile\'s server)' },
    'http-port': { value: 'N', help: 'HTTP port (default: the config\'s http.port, else the site profile\'s http_port)' },
    'dhcp-mode': { value: 'authoritative|proxy|off', help: 'DHCP: hand out addresses, proxyDHCP beside another server, or none' },
    'base-url': FLAGS['base-url'],
    user: { value: 'NAME', help: 'started as root: become this user once the ports are bound (default: the config\'s user, else "rolecast" if it exists; "root" stays root)' },
  },
  description: 'Answer DHCP (port 67, proxy 4011), TFTP (69) and HTTP for PXE until SIGINT or SIGTERM. Any edit of the profiles reloads them once the files have settled (reload.settleMs); a broken edit keeps the last good snapshot serving, and one that would drop more than reload.maxDropShare of the machines waits for SIGHUP or `rolecast reload --force`. Ports below 1024 need root or CAP_NET_BIND_SERVICE; started as root with a service user configured, rolecast drops to it after binding.',
  examples: [
    'rolecast serve                                   # /etc/rolecast/rolecast.yaml',
    'rolecast serve --config ./rolecast.yaml',
    'rolecast serve --profiles ./profiles --data /tmp/rc --images ./images --address 10.0.0.1 --dhcp-mode proxy',
  ],
};
