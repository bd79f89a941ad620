/**
 * Router advertisements on the provisioning link, so iPXE stops waiting for IPv6. After its DHCP, every
 * iPXE (2019 build) sends router solicitations and waits ~13 s for autoconfiguration before its first
 * download (PXE-NOTES); on a v4-only provisioning network nobody answers. An RA that announces nothing —
 * router lifetime 0 (RFC 4861 §4.2, §6.3.4: not a default router), no prefix information, the M and O
 * flags off (no DHCPv6) — ends the wait at once and configures nothing on any host.
 *
 * Node's dgram cannot send ICMPv6, so Debian's radvd sends it, as a child of this server: it answers
 * solicitations within RFC 4861's limits (random delay, rate limit, hop limit 255, the all-nodes group)
 * and needs its raw socket only in its own process, where a native raw socket in ours would keep
 * CAP_NET_RAW in the server for good. One interface only: the one holding the provisioning address.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import type { Logger } from './log.js';

export interface RaConfig {
  /** Send "no router here" advertisements on the provisioning interface (needs radvd and root). */
  enabled: boolean;
  /** Interface to advertise on; default: the one holding the server's address. */
  interface?: string;
  /** radvd binary. */
  radvd: string;
}

export interface RouterAdvertiser { close(): Promise<void> }

/**
 * The interface that holds an IPv4 address (none for loopback: nothing to boot there). Node's
 * networkInterfaces() first (no process to start: this runs in every start-up); it leaves out links that
 * are down or without carrier, and a provisioning bridge has none until the first machine's port comes
 * up, so iproute2 is asked when it finds nothing.
 */
export function interfaceOf(address: string): string | undefined {
  for (const [name, addrs] of Object.entries(networkInterfaces())) {
    if (addrs?.some((a) => a.family === 'IPv4' && a.address === address && !a.internal)) return name;
  }
  const r = spawnSync('ip', ['-j', '-4', 'addr', 'show'], { encoding: 'utf8', timeout: 5000 });
  if (r.status !== 0) return undefined;
  try {
    const links = JSON.parse(r.stdout) as Array<{ ifname?: string; flags?: string[]; addr_info?: Array<{ local?: string }> }>;
    return links.find((l) => !l.flags?.includes('LOOPBACK') && l.addr_info?.some((a) => a.local === address))?.ifname;
  } catch {
    return undefined;
  }
}

/** radvd.conf for one interface: periodic and solicited RAs that announce no router, prefix or DHCPv6. */
export function radvdConfig(iface: string): string {
  if (!/^[A-Za-z0-9_.:@-]{1,15}$/.test(iface)) throw new Error(`"${iface}" is not an interface name`);
  return [
    `# written by rolecast: tells iPXE there is no IPv6 router here, so it stops waiting for one`,
    `interface ${iface} {`,
    '  AdvSendAdvert on;',
    '  AdvDefaultLifetime 0;',
    '  AdvManagedFlag off;',
    '  AdvOtherConfigFlag off;',
    '  MinRtrAdvInterval 30;',
    '  MaxRtrAdvInterval 120;',
    '};',
    '',
  ].join('\n');
}

/** Start radvd for the provisioning interface, or say why not (never fatal: boots only get slower). */
export async function startRouterAdvertiser(o: { config: RaConfig; address: string; dataDir: string; user?: string; logger: Logger }): Promise<RouterAdvertiser | undefined> {
  const { config, logger } = o;
  if (!config.enabled) return undefined;
  const iface = config.interface ?? interfaceOf(o.address);
  if (!iface) { logger.debug({ address: o.address }, 'router advertisements off: no interface holds the server address'); return undefined; }
  if (process.getuid?.() !== 0) { logger.info({ iface }, 'router advertisements off: radvd needs root (iPXE will wait ~13 s for IPv6 after DHCP)'); return undefined; }
  if (!existsSync(config.radvd)) { logger.warn({ radvd: config.radvd }, 'router advertisements off: radvd is not installed (apt-get install radvd); iPXE will wait ~13 s for IPv6 after DHCP'); return undefined; }
  const dir = join(o.dataDir, 'radvd');
  await mkdir(dir, { recursive: true });
  const conf = join(dir, 'radvd.conf');
  await writeFile(conf, radvdConfig(iface));
  // -u: radvd drops to the user this server becomes, so the server can still stop it after its own drop.
  const args = ['-n', '-C', conf, '-p', join(dir, 'radvd.pid'), '-m', 'stderr', ...(o.user ? ['-u', o.user] : [])];
  // setpriv --pdeathsig: radvd ends with this process even when it is killed without a chance to stop
  // its children (SIGKILL, a crash), instead of advertising on for nobody.
  const pdeath = existsSync('/usr/bin/setpriv');
  const child: ChildProcess = pdeath
    ? spawn('/usr/bin/setpriv', ['--pdeathsig', 'TERM', '--', config.radvd, ...args], { stdio: ['ignore', 'ignore', 'pipe'] })
    : spawn(config.radvd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stopping = false;
  child.stderr?.on('data', (d: Buffer) => {
    for (const line of d.toString().split('\n')) if (line && !/forwarding/.test(line)) logger.debug({ radvd: line }, 'radvd');
  });
  child.on('error', (err) => logger.warn({ err }, 'radvd could not start: iPXE will wait for IPv6 after DHCP'));
  child.on('exit', (code, signal) => { if (!stopping) logger.warn({ code, signal }, 'radvd exited: iPXE will wait for IPv6 after DHCP'); });
  logger.info({ iface, pid: child.pid }, 'router advertisements on (lifetime 0, no prefix): iPXE skips its IPv6 wait');
  return {
    close: () => new Promise<void>((resolve) => {
      stopping = true;
      if (child.exitCode !== null || child.signalCode !== null) { resolve(); return; }
      const t = setTimeout(() => child.kill('SIGKILL'), 3000);
      child.once('exit', () => { clearTimeout(t); resolve(); });
      child.kill('SIGTERM');
    }),
  };
}
