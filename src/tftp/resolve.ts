/**
 * What a TFTP file name means: a static file under one of the roots (loaders, .c32 modules), an
 * inventory image (`images/<name>`, as PXELINUX configs name them), or a config rendered on request
 * through planBoot (pxelinux.cfg/…, grub.cfg-01-<mac>). Paths are confined to their root: no `..`, no
 * absolute escape, no symlink that leads out.
 */
import { realpathShared, statShared, type FileIdentity } from '../fsutil.js';
import { isAbsolute, join, sep } from 'node:path';
import type { Inventory } from '../inventory/types.js';
import { normaliseMac } from '../boot/facts.js';
import { planBoot, type BootTargetPlan } from '../boot/plan.js';
import { machineAt } from '../boot/identify.js';
import { renderGrubConfig, renderPxelinuxConfig } from '../render/index.js';
import type { RenderContext } from '../render/types.js';
import { ipToInt } from '../inventory/ip.js';

export type Resolved =
  /** `version`: the file as stat'ed here, so the transfer sends that version (a shared handle, src/fsutil.ts) or fails. */
  | { kind: 'file'; absPath: string; size: number; version?: FileIdentity; label: 'loader' | 'file' | 'image'; mac?: string; host?: string }
  | { kind: 'virtual'; content: Buffer; label: 'config'; mac?: string; host?: string }
  | { kind: 'missing'; reason: string }
  | { kind: 'denied'; reason: string };

export interface TftpResolver {
  resolve(path: string, client: { address: string }): Promise<Resolved>;
}

export interface ResolverOptions {
  roots: string[];
  imagesDir: string;
  getInventory: () => Inventory;
  ctx: RenderContext;
  /** Called when the plan says this config used a boot-once target up. */
  bootOnceServed?: (host: string, target: string) => void;
  /** The MAC holding a live lease on an address (state layer), to tell whose request names no machine. */
  leaseHolder?: (ip: string) => string | undefined;
  /** GRUB's module directory (Debian: /usr/lib/grub), for `insmod` from a network GRUB's $prefix. */
  grubDir?: string;
  /** This boot's token for a config that goes to the machine's own address (src/boottokens.ts); none without it. */
  mintToken?: (plan: BootTargetPlan, address: string) => Promise<string | undefined>;
}

/** Normalise a requested name to a relative path, or say why it is refused. */
export function normalisePath(name: string): { rel: string } | { denied: string } {
  // Some PXE stacks send DOS-style separators; treat them as '/'.
  const parts = name.replace(/\\/g, '/').split('/').filter((p) => p !== '' && p !== '.');
  if (parts.length === 0) return { denied: 'empty file name' };
  if (parts.some((p) => p === '..')) return { denied: `"${name}" leaves the TFTP root` };
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is refused here
  if (/[\0-\x1f]/.test(name)) return { denied: 'control characters in file name' };
  return { rel: parts.join('/') };
}

/**
 * Debian's ipxe package installs /usr/lib/ipxe/ipxe.efi as a symlink to /boot/ipxe.efi. A symlink may
 * therefore leave its root into one of these directories, and only for a boot-loader file; any other
 * link out of a root is refused.
 */
const TRUSTED_LINK_DIRS = ['/boot'];
const LOADER_FILE = /\.(efi|kpxe|kkpxe|pxe|0|c32|lkrn)$/;

function within(dir: string, p: string): boolean {
  return p === dir || p.startsWith(dir + sep);
}

/** The loader's realpath and stat, on this thread (src/fsutil.ts statShared: a storm asks for the same hot file). */
async function confined(realRoot: string, rel: string): Promise<{ absPath: string; size: number; version: FileIdentity } | undefined> {
  try {
    const real = await realpathShared(join(realRoot, rel));
    const trusted = LOADER_FILE.test(real) && TRUSTED_LINK_DIRS.some((d) => within(d, real));
    if (!within(realRoot, real) && !trusted) return undefined; // a symlink out of the root
    const st = await statShared(real);
    return st.isFile() ? { absPath: real, size: st.size, version: { ino: st.ino, size: st.size, mtimeMs: st.mtimeMs } } : undefined;
  } catch {
    return undefined;
  }
}

/** pxelinux.cfg/<uuid> names use option 97's raw byte order: the first three fields are byte-swapped
 * relative to the SMBIOS text form. Accept both spellings. */
function swapUuid(u: string): string {
  const h = u.replace(/-/g, '');
  const sw = (s: string) => s.match(/../g)!.reverse().join('');
  const r = sw(h.slice(0, 8)) + sw(h.slice(8, 12)) + sw(h.slice(12, 16)) + h.slice(16);
  return `${r.slice(0, 8)}-${r.slice(8, 12)}-${r.slice(12, 16)}-${r.slice(16, 20)}-${r.slice(20)}`;
}

// UUID (both byte orders) and IP-in-hex names → MAC, per snapshot: pxelinux asks for up to ten names
// per boot, and scanning every machine for each made a TFTP request O(N).
const pxelinuxIndex = new WeakMap<Inventory, Map<string, string>>();

function pxelinuxNames(inv: Inventory): Map<string, string> {
  let idx = pxelinuxIndex.get(inv);
  if (idx) return idx;
  idx = new Map();
  for (const m of [...inv.machines].reverse()) { // the first machine wins, as Array#find did
    const mac = m.macs[0];
    if (!mac) continue;
    if (m.uuid) { idx.set(m.uuid, mac); idx.set(swapUuid(m.uuid), mac); }
    const n = ipToInt(m.ip);
    if (n !== undefined) idx.set(n.toString(16).toUpperCase().padStart(8, '0'), mac);
  }
  pxelinuxIndex.set(inv, idx);
  return idx;
}

/** Which machine a pxelinux.cfg/ name is for: 01-<mac>, a UUID, or the IP in hex (or a prefix of it). */
function pxelinuxTarget(inv: Inventory, name: string): string | undefined {
  const mac = /^01-(([0-9a-f]{2}-){5}[0-9a-f]{2})$/i.exec(name);
  if (mac) return normaliseMac(mac[1]!);
  if (/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(name)) return pxelinuxNames(inv).get(name.toLowerCase());
  // Only the full 8-digit form names one machine; shorter prefixes would match a whole subnet.
  if (/^[0-9A-F]{8}$/.test(name)) return pxelinuxNames(inv).get(name);
  return undefined;
}

export function createResolver(opts: ResolverOptions): TftpResolver {
  // Each root's real path, resolved once it exists (a root missing now may be created later).
  const realRoots = new Map<string, string>();
  const realRootOf = async (root: string): Promise<string | undefined> => {
    const known = realRoots.get(root);
    if (known) return known;
    const real = await realpathShared(root).catch(() => undefined);
    if (real) realRoots.set(root, real);
    return real;
  };
  const renderFor = async (kind: 'pxelinux' | 'grub', mac: string | undefined, address: string): Promise<Resolved> => {
    if (!mac) return { kind: 'missing', reason: 'no machine for this config name' };
    const inv = opts.getInventory();
    const plan = planBoot({ mac, protocol: 'tftp', ipxe: false, pxe: true, arch: kind === 'grub' ? 7 : 0, request: 'config', address }, inv, opts.ctx);
    if (plan.action === 'ignore') return { kind: 'missing', reason: plan.reason };
    const token = await opts.mintToken?.(plan, address);
    const text = kind === 'pxelinux' ? renderPxelinuxConfig(plan, inv, opts.ctx, token) : renderGrubConfig(plan, inv, opts.ctx, token);
    if (plan.consumesBootOnce && plan.host) opts.bootOnceServed?.(plan.host, plan.role.name);
    return { kind: 'virtual', content: Buffer.from(text), label: 'config', mac, host: plan.host };
  };
  return {
    async resolve(name, client) {
      const n = normalisePath(name);
      if ('denied' in n) return { kind: 'denied', reason: n.denied };
      const { rel } = n;
      const inv = opts.getInventory();
      // Requests that name no machine (loaders, images, modules, bare configs): the client's reserved
      // address still tells whose boot this is.
      const byAddress = machineAt(inv, client.address, opts.leaseHolder);
      const render = (kind: 'pxelinux' | 'grub', mac: string | undefined) => renderFor(kind, mac, client.address);
      const pxe = /^pxelinux\.cfg\/(.+)$/.exec(rel);
      if (pxe?.[1] === 'default') {
        // pxelinux's last try names no machine; a reserved address still does. Otherwise boot the
        // local disk rather than guess a role for an unidentified box.
        if (byAddress.mac) return render('pxelinux', byAddress.mac);
        return { kind: 'virtual', label: 'config', content: Buffer.from('# rolecast: unidentified client, boot from local disk\nDEFAULT local\nLABEL local\n  LOCALBOOT 0\n') };
      }
      if (pxe) return render('pxelinux', pxelinuxTarget(inv, pxe[1]!));
      // GRUB looks in its $prefix, which depends on how the image was built (Debian's grubnetx64.efi
      // sources $prefix/x86_64-efi/grub.cfg or $prefix/grub.cfg; net-aware builds try grub.cfg-01-<mac>
      // and grub.cfg-<IP hex> first): answer in any directory. A bare grub.cfg names no machine, but the
      // client's reserved address does.
      const grub = /^(?:.*\/)?grub\.cfg(?:-(.+))?$/.exec(rel);
      if (grub) {
        const suffix = grub[1];
        const mac = /^01-(([0-9a-f]{2}-){5}[0-9a-f]{2})$/i.exec(suffix ?? '');
        if (mac) return render('grub', normaliseMac(mac[1]!));
        if (suffix === undefined) return render('grub', byAddress.mac);
        return render('grub', /^[0-9A-F]{8}$/.test(suffix) ? pxelinuxTarget(inv, suffix) : undefined);
      }
      // A network GRUB loads modules and lists from $prefix/<platform>/: the same package's files.
      const mod = /^(?:.*\/)?((?:x86_64|i386|arm64|arm)-efi|i386-pc)\/([\w.+-]+\.(?:mod|lst))$/.exec(rel);
      if (mod) {
        const grubRoot = await realRootOf(opts.grubDir ?? '/usr/lib/grub');
        const hit = grubRoot === undefined ? undefined : await confined(grubRoot, `${mod[1]}/${mod[2]}`);
        if (hit) return { kind: 'file', ...hit, ...byAddress, label: 'file' };
        return { kind: 'missing', reason: `no GRUB file ${mod[1]}/${mod[2]}` };
      }
      const img = /^images\/([^/]+)$/.exec(rel);
      if (img) {
        const image = inv.images[img[1]!];
        if (!image) return { kind: 'missing', reason: `no image "${img[1]}"` };
        const file = isAbsolute(image.path) ? image.path : join(opts.imagesDir, image.path);
        const st = await statShared(file).catch(() => undefined);
        return st?.isFile() ? { kind: 'file', absPath: file, size: st.size, version: { ino: st.ino, size: st.size, mtimeMs: st.mtimeMs }, label: 'image', ...byAddress } : { kind: 'missing', reason: `image file ${file} is missing` };
      }
      for (const root of opts.roots) {
        const realRoot = await realRootOf(root);
        const hit = realRoot === undefined ? undefined : await confined(realRoot, rel);
        if (hit) return { kind: 'file', ...hit, ...byAddress, label: /\.(k?pxe|efi|0|c32)$/.test(rel) ? 'loader' : 'file' };
      }
      return { kind: 'missing', reason: `${rel} is not in any TFTP root` };
    },
  };
}
