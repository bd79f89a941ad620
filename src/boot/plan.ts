/**
 * planBoot: the one decision. A pure, deterministic function of (facts, inventory, where the server is)
 * that DHCP, proxyDHCP, TFTP and HTTP all call, many times per boot, and that must give each of them the
 * same answer. "Ignore this client" is a value, never an exception.
 */
import type { BootMethod, Inventory, Machine, ResolvedMachine, Role } from '../inventory/types.js';
import { bootMethodOf, effectiveRoleName, mergedCmdline, resolveMachine } from '../inventory/resolve.js';
import { firmwareOf, isHttpBootFirmware, type Firmware, type MachineFacts } from './facts.js';
import type { ImageView } from '../images/view.js';

export interface PlanContext {
  /** Base URL machines use to reach rolecast's HTTP server, e.g. http://10.0.0.1:8080 */
  baseUrl: string;
  /** Current and staged versions of role images (src/images/view.ts), for the rootfs decision. */
  images?: ImageView;
}

export type BootFile =
  | { kind: 'tftp'; file: string } // BOOTP file / option 67, fetched from next-server over TFTP
  | { kind: 'http'; url: string }; // iPXE script or UEFI HTTP boot URL

export interface IgnorePlan {
  action: 'ignore';
  mac: string;
  reason: string;
}

export interface BootTargetPlan {
  action: 'boot';
  mac: string;
  /** The inventory machine, absent when an unknown MAC boots under the unknown-machine policy. */
  machine?: Machine;
  /** The machine with role defaults merged (absent for an unknown MAC). */
  resolved?: ResolvedMachine;
  host?: string;
  /** The role that boots now: the machine's role, its boot-once target, or the policy target. */
  role: Role;
  /** True while a boot-once maintenance target is in force. */
  bootOnce: boolean;
  firmware: Firmware;
  method: BootMethod;
  /** The kernel (or standalone binary) image for this firmware: the role's per-firmware choice, else its kernel. */
  kernel: string;
  /** What DHCP puts in the BOOTP file field and option 67. */
  bootfile: BootFile;
  /** The iPXE script for this MAC. */
  scriptUrl: string;
  /** The role's command line, then the machine's (merged once, in resolveMachine). */
  cmdline: string;
  /** The base image of this machine's rootfs (image name), when its role has one. */
  rootfs?: string;
  /**
   * Which version of it (<name>-<sha12>.tar): the one staged on this machine (`images try`), else the
   * image's current one; absent when no image view was given or the image is not versioned.
   */
  rootfsVersion?: string;
  /** True when this very request hands out the boot-once target's configuration: the target is used up. */
  consumesBootOnce: boolean;
  /**
   * True when this request hands out the boot config (the iPXE script, or the PXELINUX/GRUB config):
   * the one that starts a boot, so it may carry a new boot token (src/boot/token.ts tokenDue).
   */
  mintsBootToken: boolean;
}

export type BootPlan = IgnorePlan | BootTargetPlan;

/**
 * Loader file names per boot method and firmware. Sites override per firmware (site.loaders), roles
 * and machines override again. HTTP-boot firmware (arch 16/19) loads the same EFI binary over HTTP.
 */
const DEFAULT_LOADERS: Record<BootMethod, Partial<Record<Firmware, string>>> = {
  ipxe: {
    bios: 'undionly.kpxe',
    // snponly.efi is to UEFI what undionly.kpxe is to BIOS: iPXE driving the NIC through the firmware's
    // own driver (SNP), the one that just PXE-booted. ipxe.efi (every native driver) took ~4 s longer
    // from start to its DHCP on OVMF under TCG and ended up on SNP all the same (bench:boot); a site whose
    // firmware's SNP is poor sets `loaders: { uefi-x64: ipxe.efi }`.
    'uefi-x64': 'snponly.efi',
    'uefi-http-x64': 'ipxe.efi',
    'uefi-arm64': 'ipxe-arm64.efi',
    'uefi-http-arm64': 'ipxe-arm64.efi',
    'uefi-ia32': 'ipxe-ia32.efi',
  },
  pxelinux: {
    bios: 'pxelinux.0',
    'uefi-x64': 'syslinux.efi',
    'uefi-http-x64': 'syslinux.efi',
    'uefi-ia32': 'syslinux32.efi',
  },
  grub: {
    bios: 'grub/i386-pc/core.0',
    // Debian's network GRUB (grub-efi-amd64-bin, monolithic/): http, tftp and efinet built in.
    'uefi-x64': 'grubnetx64.efi',
    'uefi-http-x64': 'grubnetx64.efi',
    'uefi-arm64': 'grubaa64.efi',
    'uefi-http-arm64': 'grubaa64.efi',
  },
};

function ignore(mac: string, reason: string): IgnorePlan {
  return { action: 'ignore', mac, reason };
}

/**
 * The script URL carries the client architecture when known: iPXE fetches it without saying which
 * firmware it runs on, and EFI needs `initrd=<name>` on the kernel command line where BIOS does not.
 */
export function scriptUrlFor(ctx: PlanContext, mac: string, arch?: number): string {
  return `${ctx.baseUrl}/boot/${mac}.ipxe${arch !== undefined && Number.isInteger(arch) ? `?arch=${arch}` : ''}`;
}

export function loaderUrlFor(ctx: PlanContext, file: string): string {
  return `${ctx.baseUrl}/loaders/${file}`;
}

interface Chosen {
  machine?: Machine;
  resolved?: ResolvedMachine;
  role: Role;
  bootOnce: boolean;
}

/** Which role boots: the machine's, its boot-once target, or the unknown-machine policy's. */
function chooseRole(facts: MachineFacts, inv: Inventory): Chosen | IgnorePlan {
  const machine = inv.byMac.get(facts.mac);
  if (!machine) {
    const { policy } = inv.site.unknown;
    // discover boots the commissioning image: the bundled role "discover" unless the site names another.
    const target = policy === 'discover' ? inv.site.unknown.target ?? 'discover' : inv.site.unknown.target;
    if (policy === 'ignore' || !target) return ignore(facts.mac, 'unknown MAC (unknown-machine policy: ignore)');
    const role = inv.roles[target];
    if (!role) return ignore(facts.mac, `unknown MAC and policy target "${target}" is not a role`);
    if (role.destructive) return ignore(facts.mac, `unknown MAC: policy target "${target}" is destructive and an unknown machine cannot confirm it`);
    return { role, bootOnce: false };
  }
  // The validator rejects unknown roles; a snapshot cannot hold one. Stay total anyway.
  if (!inv.roles[effectiveRoleName(machine)]) return ignore(facts.mac, `${machine.host}: role "${effectiveRoleName(machine)}" is not defined`);
  const resolved = resolveMachine(inv, machine);
  const { role } = resolved;
  if (role.destructive && !machine.confirmWipe) {
    return ignore(facts.mac, `${machine.host}: target "${role.name}" is destructive and the machine does not set confirm_wipe`);
  }
  return { machine, resolved, role, bootOnce: machine.bootOnce !== undefined };
}

/** The request that hands out the boot configuration: it starts a boot (token) and uses boot-once up. */
function handsOutConfig(method: BootMethod, facts: MachineFacts): boolean {
  return method === 'ipxe' ? facts.request === 'script' : facts.request === 'config';
}

function consumes(c: Chosen, method: BootMethod, facts: MachineFacts): boolean {
  return c.bootOnce && c.machine !== undefined && handsOutConfig(method, facts);
}

function loaderFor(inv: Inventory, c: Chosen, method: BootMethod, fw: Firmware): string | undefined {
  return c.machine?.loaders[fw] ?? c.role.loaders[fw] ??
    (method === 'ipxe' ? inv.site.loaders[fw] : undefined) ?? DEFAULT_LOADERS[method][fw];
}

/** A version staged on this very machine wins over the image's current one. */
function rootfsVersionOf(role: Role, machine: Machine | undefined, ctx: PlanContext): { rootfsVersion?: string } {
  if (!role.rootfs || !ctx.images) return {};
  const v = (machine ? ctx.images.pins[role.rootfs]?.[machine.host] : undefined) ?? ctx.images.current[role.rootfs];
  return v ? { rootfsVersion: v } : {};
}

export function planBoot(facts: MachineFacts, inv: Inventory, ctx: PlanContext): BootPlan {
  const mac = facts.mac;
  // proxyDHCP answers only PXE clients (PXE spec 2.1 §2.2.5): anything else belongs to the real DHCP server.
  if (facts.protocol === 'proxydhcp' && !facts.pxe && !facts.ipxe) return ignore(mac, 'not a PXE client');
  const chosen = chooseRole(facts, inv);
  if ('action' in chosen) return chosen;
  const { machine, resolved, role, bootOnce } = chosen;
  const method = resolved?.boot ?? bootMethodOf(inv, role);
  // A client that sends no option 93 is treated as BIOS: RFC 4578 makes 93 mandatory for PXE, and the
  // legacy clients that omit it (old BIOS ROMs, udhcpc) are x86 BIOS.
  const fw = firmwareOf(facts.arch) === 'unknown' && facts.arch === undefined ? 'bios' : firmwareOf(facts.arch);
  const scriptUrl = scriptUrlFor(ctx, mac, facts.arch);
  const kernel = (fw !== 'unknown' ? role.kernels[fw] : undefined) ?? role.kernel;
  const base = {
    action: 'boot' as const, mac, machine, resolved, host: machine?.host, role, bootOnce, firmware: fw, method, kernel, scriptUrl,
    cmdline: resolved?.cmdline ?? mergedCmdline(role), ...(role.rootfs ? { rootfs: role.rootfs } : {}),
    ...rootfsVersionOf(role, machine, ctx),
    consumesBootOnce: consumes(chosen, method, facts),
    mintsBootToken: handsOutConfig(method, facts),
  };

  // iPXE already runs: hand it the script, never the iPXE loader again (that would loop, chainloading
  // forever). A PXELINUX or GRUB machine whose NIC ROM is iPXE (QEMU's, many cards') gets its loader:
  // those do not chain back to iPXE, so there is no loop.
  if (facts.ipxe && method === 'ipxe') return { ...base, bootfile: { kind: 'http', url: scriptUrl } };
  if (fw === 'unknown') return ignore(mac, `unsupported client architecture ${facts.arch}`);
  const file = loaderFor(inv, chosen, method, fw);
  if (!file) return ignore(mac, `no ${method} loader for firmware ${fw}`);
  // UEFI HTTP boot (arch 16/19) fetches its loader by URL, not over TFTP.
  if (isHttpBootFirmware(fw)) return { ...base, bootfile: { kind: 'http', url: loaderUrlFor(ctx, file) } };
  return { ...base, bootfile: { kind: 'tftp', file } };
}
