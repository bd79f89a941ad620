/**
 * Server configuration: where the profiles, data and images live, and what each listener does.
 * Read from a YAML file (`rolecast serve --config FILE`), then command-line flags override it.
 */
import type { RaConfig } from './ra.js';
import type { ConsoleRecordConfig } from './bmc/recorder.js';
import type { BulkWhen } from './http/bulk.js';

export type DhcpMode = 'authoritative' | 'proxy' | 'off';

export interface DhcpConfig {
  mode: DhcpMode;
  /** Port for DHCP (67); proxy mode also answers on proxyPort (4011, PXE spec §2.2.5). */
  port: number;
  proxyPort: number;
  /** Address to bind (0.0.0.0: broadcasts arrive only there). */
  bind: string;
  leaseTime: number; // seconds
  /** Hand out addresses to non-PXE clients that are in the inventory (e.g. the initramfs's udhcpc). */
  serveNonPxe: boolean;
  /** Send iPXE option 175.176 = 1 so iPXE skips its proxyDHCP wait. */
  ipxeNoProxyWait: boolean;
  /** Delay (ms) before replying, for ROMs that miss fast replies (dnsmasq's dhcp-reply-delay). */
  replyDelayMs: number;
  /**
   * auto: unicast OFFER/ACK to yiaddr when the client's broadcast bit is clear, after adding its ARP entry
   * (needs CAP_NET_ADMIN and the native/neigh addon; without them: broadcast, said once at info). off: always broadcast.
   */
  unicastReplies: 'auto' | 'off';
  /**
   * auto: DHCP datagrams move in batches (recvmmsg/sendmmsg, native/dhcpio) when the addon is built, else
   * through node:dgram; off: always node:dgram.
   */
  batchIo: 'auto' | 'off';
  /**
   * auto: answer on a thread of its own (src/dhcp/thread.ts) with the lease store on it (the file journal,
   * or a PostgreSQL connection of its own); the main thread when the thread cannot start. off: always the
   * main thread.
   */
  thread: 'auto' | 'off';
  /**
   * Nice value of the DHCP thread (-20..19; 0 leaves it as the process's). Below 0 the kernel wakes it ahead of
   * the busy HTTP/TFTP thread and the rest of a saturated host; needs root, CAP_SYS_NICE or RLIMIT_NICE
   * (systemd LimitNICE=), else it stays at the process's and says so once.
   */
  threadNice: number;
  /** Dynamic pool for unknown machines: network name in the inventory whose `pool` is used. */
  poolNetwork?: string;
}

export interface TftpConfig {
  enabled: boolean;
  port: number;
  bind: string;
  /** Directories searched in order for static files (loaders, .c32 modules). */
  roots: string[];
  /** Largest blksize granted (RFC 2348); MTU-safe default 1468, some UEFI clients need <= 1024. */
  maxBlksize: number;
  maxWindowsize: number;
  /** Retransmit timeout (ms) when the client does not negotiate one (RFC 2349), and retry count. */
  timeoutMs: number;
  retries: number;
  /** Largest `timeout` option (s) acknowledged (RFC 2349 allows 1-255); a larger one is left out of the OACK. */
  maxTimeoutS: number;
  /** A transfer whose client has not been heard from for this long ends, whatever its timeout and back-off. */
  maxStallMs: number;
  /** Transfers in total and per client address; when full, unanswered requests make room for new clients. */
  maxTransfers: number;
  maxTransfersPerClient: number;
  /**
   * Microseconds the event loop keeps polling after each DATA window instead of sleeping (0 = off).
   * Halves lock-step transfer time on virtual machines, where a sleep/wake costs more than the round trip.
   */
  busyPollUs: number;
}

export interface HttpConfig {
  enabled: boolean;
  host: string;
  port: number;
  /** One admin bearer token (kept from before `tokens`); counts as one more entry of tokens.admin. */
  token?: string;
  /**
   * API bearer tokens (src/http/auth.ts): admin tokens may change things, read tokens may only read the
   * inventory, leases and events. With none configured, those routes are refused.
   */
  tokens?: { admin?: string[]; read?: string[] };
  /**
   * Send image files and the base-image part of a rootfs with sendfile(2) through the native engine
   * (native/sendfile) when it is built; otherwise, or when false, they stream through Node.
   */
  sendfile: boolean;
  /**
   * The largest TCP retransmission timeout of an HTTP connection, in ms (1000-120000; Linux 6.15+, else
   * the kernel's 120 s). Each timeout in a row doubles it: a transfer that lost its retransmissions a few
   * times in a boot storm waited a minute or more for the next try while the network had long recovered.
   */
  rtoMaxMs: number;
  /**
   * Images and rootfs of 32 MiB or more sent at once through the sendfile engine when the gate is closed;
   * the rest wait their turn in arrival order (src/http/bulk.ts). Default 24; 0: no gate. A boot storm's
   * rootfs stage finished sooner with 24 (bench:storm), but 200 downloads on loopback went 15-20% slower
   * (bench:http); both measured in CHANGELOG.md, hence bulkWhen.
   */
  bulkSlots: number;
  /**
   * When the gate is closed: `pressure` (the default) only while the kernel reports TCP memory pressure
   * (and until the sends that waited meanwhile have had their turn), `always` at all times.
   */
  bulkWhen: BulkWhen;
  /** How long one send may hold a bulk slot (ms) before it goes on without one and the next starts. */
  bulkHoldMs: number;
  /** Largest rolecast-capture upload accepted (bytes; default 64 MiB). */
  captureMaxBytes?: number;
}

/**
 * Where the state lives: `file` (the data directory; the default, needs nothing) or `postgres` (several
 * servers share leases, events, served records, discovered machines, power actions and the profiles).
 */
export interface StateConfig {
  backend: 'file' | 'postgres';
  /** postgres://user:password@host:port/db (or a unix socket: postgres://user@%2Fvar%2Frun%2Fpostgresql/db). */
  url?: string;
}

/** BMC power calls (src/bmc/): every call's deadline, its attempts, and the global cap on calls in flight. */
export interface BmcConfig {
  /** Deadline for one BMC call, all attempts included (ms). */
  timeoutMs: number;
  /** Attempts per call (1 = no retry); only failures that reached no BMC, or a busy answer, are retried. */
  attempts: number;
  /** BMC calls in flight at once, across all BMCs (each BMC also gets one call at a time). */
  maxConcurrent: number;
  /** Boot console recording over Serial over LAN (IPMI BMCs; src/bmc/recorder.ts). */
  console: ConsoleRecordConfig;
}

/** How watched profile edits go live (src/inventory/settle.ts). */
export interface ReloadConfig {
  /** An edit applies once the profile files have been unchanged this long (ms), and parse. */
  settleMs: number;
  /** A reload that would drop more than this share (0..1) of the machines waits for confirmation. */
  maxDropShare: number;
}

/**
 * How secret files reach a machine (issue 16): only through GET /secrets/<mac>, with the boot token its
 * script carried, within `windowS` seconds of that script fetch, from a source port below 1024 (only
 * root on the box can send from one, as Warewulf requires).
 */
export interface SecretsConfig {
  /** Seconds after the script (or config) fetch during which the boot token fetches the secrets. */
  windowS: number;
  /**
   * Refuse a secret fetch from an unprivileged source port. Turn off only when something in front of
   * rolecast (a proxy, a NAT) rewrites source ports: then any process on the box holding the token can
   * fetch, and the README says what that costs.
   */
  requirePrivilegedPort: boolean;
}

export interface ServerConfig {
  profilesDir: string;
  dataDir: string;
  imagesDir: string;
  /** The provisioning address this server answers as: DHCP option 54 and siaddr, and in URLs. */
  address: string;
  /** URL machines use for HTTP; defaults to http://<address>:<http.port>. */
  baseUrl?: string;
  logLevel: string;
  /**
   * Started as root: the user to become once the ports are bound ("root" stays root). Unset: the `rolecast`
   * system user when it exists.
   */
  user?: string;
  dhcp: DhcpConfig;
  tftp: TftpConfig;
  http: HttpConfig;
  state: StateConfig;
  /** Router advertisements ("no IPv6 router here") on the provisioning link while DHCP is on: src/ra.ts. */
  ra: RaConfig;
  bmc: BmcConfig;
  reload: ReloadConfig;
  secrets: SecretsConfig;
}

/** Debian packages' install paths for loaders, after the project's own images/loaders. */
export const DEFAULT_TFTP_ROOTS = [
  'images/loaders',
  '/usr/lib/ipxe',
  '/usr/lib/PXELINUX',
  '/usr/lib/syslinux/modules/bios',
  '/usr/lib/SYSLINUX.EFI/efi64',
  '/usr/lib/grub/x86_64-efi/monolithic',
];

export function defaultConfig(): ServerConfig {
  return {
    profilesDir: 'profiles',
    dataDir: 'data',
    imagesDir: 'images',
    address: '127.0.0.1',
    logLevel: 'info',
    dhcp: {
      mode: 'authoritative', port: 67, proxyPort: 4011, bind: '0.0.0.0', leaseTime: 3600,
      serveNonPxe: true, ipxeNoProxyWait: true, replyDelayMs: 0, unicastReplies: 'auto', batchIo: 'auto', thread: 'auto', threadNice: -10,
    },
    tftp: {
      enabled: true, port: 69, bind: '0.0.0.0', roots: [...DEFAULT_TFTP_ROOTS], maxBlksize: 1468,
      maxWindowsize: 64, timeoutMs: 1000, retries: 5, maxTimeoutS: 10, maxStallMs: 30_000, maxTransfers: 2000, maxTransfersPerClient: 16,
      busyPollUs: 50,
    },
    http: { enabled: true, host: '0.0.0.0', port: 8080, sendfile: true, rtoMaxMs: 2000, bulkSlots: 24, bulkWhen: 'pressure', bulkHoldMs: 5000 },
    state: { backend: 'file' },
    ra: { enabled: true, radvd: '/usr/sbin/radvd' },
    bmc: { timeoutMs: 10_000, attempts: 2, maxConcurrent: 16, console: { record: 'boot', timeoutMs: 600_000, lines: 24, maxBytes: 256 * 1024, maxSessions: 64, settleMs: 2000 } },
    reload: { settleMs: 2000, maxDropShare: 0.25 },
    // Script fetch to the initramfs's secret fetch is ~20-60 s on a VM under TCG; 5 min leaves room
    // for slow firmware and a few download retries, and still ends long before a box could be swapped.
    secrets: { windowS: 300, requirePrivilegedPort: true },
  };
}

export function baseUrlOf(cfg: ServerConfig): string {
  return cfg.baseUrl ?? `http://${cfg.address}${cfg.http.port === 80 ? '' : `:${cfg.http.port}`}`;
}
