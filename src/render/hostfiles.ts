/** Identity and housekeeping files: hostname, hosts, syslog forwarding, the machine's own record. */
import type { Inventory, ResolvedMachine } from '../inventory/types.js';
import { RenderError } from '../errors.js';
import type { RenderContext, RenderedFile } from './types.js';

const file = (path: string, content: string, mode = 0o644): RenderedFile => ({ path, mode, content, secret: false });

export function renderHostname(rm: ResolvedMachine): RenderedFile {
  return file('/etc/hostname', `${rm.machine.host}\n`);
}

/** Every machine by name: DSAS boxes address each other by host name without DNS. */
export function renderHosts(rm: ResolvedMachine, inv: Inventory): RenderedFile {
  const d = inv.site.domain;
  const lines = ['127.0.0.1\tlocalhost', `127.0.1.1\t${rm.machine.host}.${d} ${rm.machine.host}`, '::1\tlocalhost ip6-localhost ip6-loopback', ''];
  for (const m of [...inv.machines].sort((a, b) => a.host.localeCompare(b.host))) lines.push(`${m.ip}\t${m.host}.${d} ${m.host}`);
  return file('/etc/hosts', `${lines.join('\n')}\n`);
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
