/** Identity and housekeeping files: hostname, hosts, syslog forwarding, the machine's own record. */
import type { Inventory, ResolvedMachine, Role } from '../inventory/types.js';
import { RenderError } from '../errors.js';
import { derive } from '../serverkey.js';
import type { RenderContext, RenderedFile } from './types.js';

const file = (path: string, content: string, mode = 0o644): RenderedFile => ({ path, mode, content, secret: false });

export function renderHostname(rm: ResolvedMachine): RenderedFile {
  return file('/etc/hostname', `${rm.machine.host}\n`);
}

// One /etc/hosts per snapshot. Rendering it per machine made every machine's files O(N) to build and
// the whole inventory O(N^2) (70 s for /api/machines at 10,000 machines).
const hostsOf = new WeakMap<Inventory, RenderedFile>();
/** Host-name order as String#localeCompare, without its per-call locale lookup. */
const collator = new Intl.Collator();
export const byHost = (a: { host: string }, b: { host: string }): number => collator.compare(a.host, b.host);

/**
 * Every machine by name: DSAS boxes address each other by host name without DNS. The same file for every
 * machine: a machine's own name is in the list with its permanent address, and Debian's `127.0.1.1
 * <host>` line is only for hosts without one (Debian Reference, 5.1.1 "The hostname resolution").
 */
export function renderHosts(inv: Inventory): RenderedFile {
  const done = hostsOf.get(inv);
  if (done) return done;
  const d = inv.site.domain;
  const lines = ['127.0.0.1\tlocalhost', '::1\tlocalhost ip6-localhost ip6-loopback', ''];
  for (const m of [...inv.machines].sort(byHost)) lines.push(`${m.ip}\t${m.host}.${d} ${m.host}`);
  const f = Object.freeze(file('/etc/hosts', `${lines.join('\n')}\n`));
  hostsOf.set(inv, f);
  return f;
}

/** Diskless boxes keep no logs of their own worth keeping: forward them (rsyslog and busybox syslogd forms). */
export function renderSyslog(inv: Inventory): RenderedFile[] {
  const s = inv.site.syslog;
  if (!s) return [];
  const target = s.protocol === 'tcp' ? `@@${s.host}:${s.port}` : `@${s.host}:${s.port}`;
  return [
    file('/etc/rsyslog.d/90-rolecast.conf', `# rolecast: forward everything; keep only a small local buffer\n*.* ${target}\n`),
    file('/etc/default/busybox-syslogd', `# rolecast: busybox syslogd forwards and keeps a small ring buffer in RAM\nSYSLOG_OPTS="-C128 -R ${s.host}:${s.port} -L"\n`),
  ];
}

export function renderMachineJson(rm: ResolvedMachine, inv: Inventory, ctx: RenderContext): RenderedFile {
  const m = rm.machine;
  const rec = { host: m.host, domain: inv.site.domain, role: rm.role.name, homeRole: rm.homeRole, macs: m.macs, ip: m.ip, addresses: m.addresses, sites: rm.sites, server: ctx.baseUrl };
  return file('/etc/rolecast/machine.json', `${JSON.stringify(rec, null, 2)}\n`);
}

export function renderExtraFiles(rm: ResolvedMachine, inv: Inventory): RenderedFile[] {
  return rm.files.map((f) => {
    if (f.secret !== undefined) {
      const v = inv.secrets[f.secret];
      if (v === undefined) throw new RenderError(`${rm.machine.host}: ${f.path} needs secret "${f.secret}", which is not defined`);
      return { path: f.path, mode: f.mode, content: v.endsWith('\n') ? v : `${v}\n`, secret: true };
    }
    return { path: f.path, mode: f.mode, content: f.content ?? '', secret: false };
  });
}

/**
 * A machine not in the inventory (booting under the unknown-machine policy): its name from its MAC and
 * a record saying what it boots, nothing about the rest of the fleet.
 */
export function renderUnknownFiles(mac: string, role: Role, inv: Inventory, ctx: RenderContext): RenderedFile[] {
  const host = `unknown-${mac.replace(/:/g, '')}`;
  const rec = { host: null, mac, domain: inv.site.domain, role: role.name, unknown: true, server: ctx.baseUrl };
  return [file('/etc/hostname', `${host}\n`), file('/etc/rolecast/machine.json', `${JSON.stringify(rec, null, 2)}\n`)];
}

export const CAPTURE_KEY_PATH = '/etc/rolecast/capture.key';

/** The machine's credential for `rolecast-capture` uploads: derived per provisioning MAC, secret. */
export function captureCredential(key: Buffer, mac: string): string {
  return derive(key, 'capture', mac);
}

export function renderCaptureKey(rm: ResolvedMachine, ctx: RenderContext): RenderedFile[] {
  if (!ctx.serverKey || !rm.role.rootfs) return [];
  return [{ path: CAPTURE_KEY_PATH, mode: 0o600, content: `${captureCredential(ctx.serverKey, rm.machine.macs[0]!)}\n`, secret: true }];
}
