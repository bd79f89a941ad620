/**
 * The inventory: roles, machines and site data after load → validate → resolve → index.
 * Every object reachable from an Inventory is deeply frozen; a reload builds a new one.
 *
 * Profile layout (profiles/):
 *   rolecast.yaml    site settings, networks, images, virtual sites (the DSAS "YAML per virtual server")
 *   roles/*.yaml     one role per file (service roles and maintenance targets)
 *   machines.yaml    one line per machine (flow mapping), the DSAS habit: moving a role is one edit
 *   secrets.yaml     named secrets (never served except inside files marked secret, to their owner)
 */
import type { Firmware } from '../boot/facts.js';

export type BootMethod = 'ipxe' | 'pxelinux' | 'grub';

/** Where a value came from in the profiles, for error messages and `rolecast machines`. */
export interface SourceRef {
  file: string; // path relative to the profiles directory
  line: number; // 1-based
}

export interface Network {
  name: string;
  /** CIDR, e.g. 10.0.0.0/24 */
  cidr: string;
  /** Network address and prefix length split out of cidr. */
  address: string;
  prefix: number;
  gateway?: string;
  dns: string[];
  /** 802.1Q tag when this network reaches machines as a tagged VLAN on their provisioning link. */
  vlan?: number;
  /** Dynamic pool for unknown machines (DHCP), [first, last] inclusive. */
  pool?: { start: string; end: string };
}

export type ImageKind = 'kernel' | 'initrd' | 'rootfs' | 'loader' | 'binary';

export interface Image {
  name: string;
  kind: ImageKind;
  /** Path relative to the images directory (or absolute). */
  path: string;
}

export interface HealthCheck {
  type: 'HTTP_GET' | 'TCP_CHECK';
  path?: string; // HTTP_GET
  status?: number; // HTTP_GET expected status
  timeout: number; // connect_timeout seconds
}

/** One IPVS virtual server (a "site" in DSAS terms). Real servers come from the machines serving it. */
export interface VirtualSite {
  name: string;
  vip: string;
  port: number;
  protocol: 'TCP' | 'UDP';
  lbAlgo: 'rr' | 'wrr' | 'lc' | 'wlc' | 'sh' | 'dh' | 'lblc';
  lbKind: 'DR' | 'NAT' | 'TUN';
  realPort: number;
  health: HealthCheck;
  /** Optional sorry server (address:port) when every real server is down. */
  sorryServer?: string;
}

export interface Bond {
  name: string; // bond0
  mode: 'active-backup' | 'balance-rr' | 'balance-xor' | 'broadcast' | '802.3ad' | 'balance-tlb' | 'balance-alb';
  /** MII link monitoring interval (ms); mutually exclusive with arpIpTargets. */
  miimon?: number;
  arpInterval?: number;
  arpIpTargets: string[];
  primary?: string;
}

export interface Vlan {
  id: number; // 1..4094
  /** Network (by name) whose address the machine takes on this VLAN. */
  network: string;
}

export interface NetworkLayout {
  /** Bond over all the machine's NICs (needs at least two). */
  bond?: Bond;
  vlans: Vlan[];
}

export interface VrrpSetting { priority: number; state: 'MASTER' | 'BACKUP' }

export interface VrrpInstance {
  name: string;
  /** Interface the instance runs on, e.g. bond0.100 or eth0. */
  interface: string;
  virtualRouterId: number; // 1..255
  advertInt: number;
  garpMasterDelay: number;
  /** VIPs with prefix, e.g. 203.0.113.10/24; validated to lie inside a declared network. */
  vips: string[];
  /** Name of a secret in secrets.yaml holding auth_pass; files that include it are secret. */
  authSecret?: string;
  /** Optional track_interface list. */
  trackInterfaces: string[];
}

export interface KeepalivedSpec {
  vrrp: VrrpInstance[];
  /** Site names whose IPVS virtual servers this role runs. */
  virtualServers: string[];
  routerIdPrefix?: string;
}

export interface ExtraFile {
  path: string; // absolute path inside the booted system
  mode: number;
  /** Literal content, or the value of a named secret. Exactly one is set. */
  content?: string;
  secret?: string;
}

export interface Syslog {
  host: string;
  port: number;
  protocol: 'udp' | 'tcp';
}

export interface Role {
  name: string;
  kind: 'service' | 'maintenance';
  description: string;
  kernel: string; // image name
  /** Per-firmware kernel override (image names), e.g. memtest86+'s .efi for uefi-x64 and .bin for BIOS. */
  kernels: Partial<Record<Firmware, string>>;
  initrd: string[]; // image names
  rootfs?: string; // image name (service roles; maintenance images may boot a kernel/binary only)
  cmdline: string;
  /** Boot method for this role; falls back to the site default. */
  boot?: BootMethod;
  /** Per-firmware loader override (TFTP file name). */
  loaders: Partial<Record<Firmware, string>>;
  network: NetworkLayout;
  keepalived?: KeepalivedSpec;
  /** Web roles: sites served by default (machines may override). */
  sites: string[];
  files: ExtraFile[];
  /** Maintenance targets: wipe needs the machine to confirm (confirm_wipe: true). */
  destructive: boolean;
  source: SourceRef;
}

/**
 * A machine's BMC (power control). The password is the name of a secret in secrets.yaml, resolved only
 * when a call is made: it never sits in the inventory's machine objects, API answers or rendered files.
 */
export interface MachineBmc {
  type: 'ipmi' | 'redfish';
  host: string;
  port?: number;
  user: string;
  /** Name of the secret holding the password (`password: secret:NAME`). */
  passwordSecret: string;
  /** Redfish: https (default) or http. */
  scheme: 'https' | 'http';
  /** Redfish over https: check the certificate (default true; false for self-signed BMC certificates). */
  tlsVerify: boolean;
}

export interface Machine {
  host: string;
  /** Every NIC's MAC, normalised; the first is the provisioning NIC (eth0). */
  macs: string[];
  role: string;
  /** Provisioning address. */
  ip: string;
  /** SMBIOS UUID (canonical text form), when known: pxelinux asks for pxelinux.cfg/<uuid> first. */
  uuid?: string;
  /** Addresses on other networks, by network name (e.g. wan: 203.0.113.2). */
  addresses: Record<string, string>;
  /** Machine-wide VRRP priority/state: every instance of its role unless `vrrpInstances` names it. */
  vrrp?: VrrpSetting;
  /** Per VRRP instance (by the role's instance name): a box can be MASTER of one and BACKUP of another. */
  vrrpInstances?: Record<string, VrrpSetting>;
  /** Sites this machine serves (web); overrides the role's default. */
  sites?: string[];
  /** Appended to the role's cmdline. */
  cmdline?: string;
  boot?: BootMethod;
  loaders: Partial<Record<Firmware, string>>;
  /** Boot this target once, then go back to `role` (maintenance). */
  bootOnce?: string;
  /** Must be true for a destructive target (wipe) to be served to this machine. */
  confirmWipe: boolean;
  /** Machine-specific extra files (merged over the role's by path). */
  files: ExtraFile[];
  /** Power control through this BMC, when the machine has one. */
  bmc?: MachineBmc;
  source: SourceRef;
}

export interface UnknownPolicy {
  /**
   * ignore: unknown MACs get no answer; boot: they boot `target` (a default image, e.g. rescue);
   * discover: they boot the commissioning image (`target`, default role "discover": the common
   * initramfs with rolecast.action=discover), report their hardware and wait to be adopted.
   */
  policy: 'ignore' | 'boot' | 'discover';
  target?: string;
}

/** An inclusive IPv4 range, e.g. the addresses adopted machines get. */
export interface IpRange { start: string; end: string }

/** Conditions of a discovery rule; every one given must hold (globs: `*`, `?`). */
export interface RuleMatch {
  serialPrefix?: string;
  vendor?: string;
  product?: string;
  nics?: number;
  memoryMiBMin?: number;
  memoryMiBMax?: number;
  lldpSystem?: string;
  lldpPort?: string;
  lldpChassis?: string;
}

export interface DiscoveryRule {
  name: string;
  match: RuleMatch;
  /** Host-name template: {serial}, {mac}, {port}, {switch}, {n}. */
  host: string;
  role: string;
  addresses?: IpRange;
  /** Adopt without a person. */
  auto: boolean;
}

/** How adopted machines reach their BMC: the found LAN address plus these credentials make their `bmc:`. */
export interface DiscoveryBmc {
  type: 'ipmi' | 'redfish';
  user: string;
  /** Name of the secret (secrets.yaml) holding the password. */
  passwordSecret: string;
}

/** `discovery:` in rolecast.yaml. */
export interface DiscoveryConfig {
  /** Without it, a BMC address found stays in the inbox entry (a `bmc:` line needs credentials). */
  bmc?: DiscoveryBmc;
  /** Addresses for adopted machines when neither --ip nor a rule gives one. */
  addresses?: IpRange;
  rules: DiscoveryRule[];
}

export interface Site {
  domain: string;
  /** Provisioning server address used in URLs when no listener address is configured. */
  server: string;
  httpPort: number;
  boot: BootMethod;
  loaders: Partial<Record<Firmware, string>>;
  unknown: UnknownPolicy;
  syslog?: Syslog;
  timezone?: string;
}

export interface Inventory {
  readonly site: Site;
  readonly networks: readonly Network[];
  readonly images: Readonly<Record<string, Image>>;
  readonly sites: Readonly<Record<string, VirtualSite>>;
  readonly roles: Readonly<Record<string, Role>>;
  readonly machines: readonly Machine[];
  readonly secrets: Readonly<Record<string, string>>;
  readonly discovery: DiscoveryConfig;
  readonly byMac: ReadonlyMap<string, Machine>;
  readonly byHost: ReadonlyMap<string, Machine>;
  readonly byIp: ReadonlyMap<string, Machine>;
  /** Absolute profiles directory this snapshot was loaded from. */
  readonly profilesDir: string;
  /** sha256 over every source file's bytes: identifies the snapshot. */
  readonly version: string;
}

/** A machine with its effective role (role defaults merged with machine overrides). */
export interface ResolvedMachine {
  machine: Machine;
  /** The role that boots now (bootOnce target if set, else machine.role). */
  role: Role;
  /** The machine's own role (differs from role.name during a boot-once maintenance). */
  homeRole: string;
  cmdline: string;
  boot: BootMethod;
  sites: string[];
  files: ExtraFile[];
}
