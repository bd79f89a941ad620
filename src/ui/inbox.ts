/**
 * The discovery inbox: machines the commissioning image reported, with their facts, and adoption with
 * host, role and address filled in from the server's suggestion (rules, next free address).
 */
import { useEffect, useState } from 'preact/hooks';
import { availableRoutes, enc, get, isAdmin, post } from './api.js';
import { html } from './util.js';
import { Result } from './result.js';

interface Discovered {
  mac: string; macs: string[]; firstSeen: string; lastSeen: string; state: string; host?: string; address?: string;
  facts: Record<string, unknown>;
  suggestion?: { host?: string; role?: string; ip?: string; address?: string; rule?: string };
}

function short(v: unknown): string {
  if (v === undefined || v === null || v === '') return '—';
  if (typeof v !== 'object') return String(v);
  return JSON.stringify(v);
}

const size = (b: unknown): string => (typeof b === 'number' ? (b >= 2 ** 30 ? `${(b / 2 ** 30).toFixed(1)} GiB` : `${Math.round(b / 2 ** 20)} MiB`) : '');

type Obj = Record<string, unknown>;

/** The facts an operator decides on, a line each (the commissioning report's shape); everything else one click away. */
function Facts({ f }: { f: Obj }) {
  const sys = (f.system ?? {}) as Obj;
  const cpu = (f.cpu ?? {}) as Obj;
  const disks = Array.isArray(f.disks) ? (f.disks as Obj[]) : [];
  const nics = Array.isArray(f.nics) ? (f.nics as Obj[]) : [];
  const bmc = f.bmc as Obj | undefined;
  return html`<dl class="facts">
    <dt>Serial</dt><dd data-testid="fact-serial">${short(sys.serial)}</dd>
    <dt>UUID</dt><dd class="mono">${short(sys.uuid)}</dd>
    <dt>System</dt><dd>${[sys.vendor, sys.product].filter(Boolean).join(' ') || '—'}</dd>
    <dt>CPU</dt><dd>${short(cpu.model)}${cpu.cores !== undefined ? ` (${short(cpu.sockets ?? 1)}×${short(cpu.cores)} cores, ${short(cpu.threads ?? '?')} threads)` : ''}</dd>
    <dt>Memory</dt><dd>${typeof f.memoryMiB === 'number' ? `${f.memoryMiB} MiB` : '—'}</dd>
    <dt>Disks</dt><dd>${disks.length ? disks.map((d) => `${short(d.name)} ${size(d.bytes)}${d.serial ? ` ${short(d.serial)}` : ''}${d.rotational === false ? ' ssd' : ''}`).join('; ') : '—'}</dd>
    <dt>NICs</dt><dd class="mono">${nics.length ? nics.map((n) => {
      const l = n.lldp as Obj | undefined;
      return `${short(n.name)} ${short(n.mac)}${n.speedMbps ? ` ${short(n.speedMbps)} Mb/s` : ''}${n.link === false ? ' no link' : ''}${l ? ` → ${[l.system, l.port].filter(Boolean).join(' ')}${l.vlan ? ` vlan ${short(l.vlan)}` : ''}` : ''}`;
    }).join('; ') : '—'}</dd>
    ${bmc ? html`<dt>BMC</dt><dd class="mono">${short(bmc.address)} ${bmc.mac ? short(bmc.mac) : ''}</dd>` : null}
  </dl>
  <details><summary>All facts</summary><pre>${JSON.stringify(f, null, 2)}</pre></details>`;
}

function Adopt({ d, roles, done }: { d: Discovered; roles: string[]; done: (message: string) => void }) {
  const s = d.suggestion ?? {};
  const [host, setHost] = useState(s.host ?? '');
  const [role, setRole] = useState(s.role ?? roles[0] ?? '');
  const [ip, setIp] = useState(s.ip ?? s.address ?? '');
  const [r, setR] = useState<{ ok?: string; err?: Error }>();
  const id = d.mac.replace(/:/g, '');
  const submit = (e: Event) => {
    e.preventDefault();
    post<{ host: string; role: string; ip: string; line?: string }>(`/api/discovered/${enc(d.mac)}/adopt`, { host, role, ...(ip ? { ip } : {}) })
      // The entry leaves the waiting list (and this form with it): the page shows the outcome.
      .then((a) => done(`${d.mac} adopted as ${a.host} (${a.role}, ${a.ip})${a.line ? `: ${a.line.trim()}` : ''}`), (err: Error) => setR({ err }));
  };
  return html`<form class="adopt" onSubmit=${submit} aria-label=${`Adopt ${d.mac}`}>
    ${s.rule ? html`<p class="muted">Suggested by rule ${s.rule}</p>` : null}
    <label for=${`h-${id}`}>Host</label><input id=${`h-${id}`} required value=${host} onInput=${(e: Event) => setHost((e.target as HTMLInputElement).value)} />
    <label for=${`r-${id}`}>Role</label><select id=${`r-${id}`} value=${role} onChange=${(e: Event) => setRole((e.target as HTMLSelectElement).value)}>${roles.map((n) => html`<option value=${n}>${n}</option>`)}</select>
    <label for=${`i-${id}`}>Address</label><input id=${`i-${id}`} value=${ip} placeholder="next free address" onInput=${(e: Event) => setIp((e.target as HTMLInputElement).value)} />
    <button type="submit" disabled=${!isAdmin || !host || !role}>Adopt</button>
    <${Result} r=${r} />
  </form>`;
}

export function InboxPage() {
  const [has, setHas] = useState<boolean>();
  const [list, setList] = useState<Discovered[]>();
  const [roles, setRoles] = useState<string[]>([]);
  const [error, setError] = useState('');
  const [notice, setNotice] = useState('');
  // The adopt form waits for the role list: a select drawn before its options would show the first
  // option while the suggested role is what gets sent.
  const load = () => get<Discovered[] | { machines: Discovered[] }>('/api/discovered').then((x) => setList(Array.isArray(x) ? x : x.machines), (e: Error) => setError(e.message));
  useEffect(() => {
    void availableRoutes().then((r) => {
      const ok = r.has('GET /api/discovered');
      setHas(ok);
      if (ok) { void load(); get<{ roles: string[] }>('/api/fleet').then((f) => setRoles(f.roles), () => undefined); }
    });
  }, []);
  if (has === false) return html`<section><h2>Discovery inbox</h2><p class="muted" data-testid="not-available">Not available: this server has no discovery API.</p></section>`;
  if (error) return html`<p class="error" role="alert">${error}</p>`;
  if (!list) return html`<p class="loading">Loading the inbox…</p>`;
  const waiting = list.filter((d) => d.state === 'waiting' || d.state === 'known-machine-new-nic');
  return html`<section aria-labelledby="inbox-h"><h2 id="inbox-h">Discovery inbox <small>(${waiting.length} waiting, ${list.length} in all)</small></h2>
    ${notice ? html`<p class="ok" role="status" data-testid="inbox-notice">${notice}</p>` : null}
    ${list.length === 0 ? html`<p>No machine has reported yet.</p>` : null}
    ${list.map((d) => html`<article class="card" data-mac=${d.mac}>
      <h3 class="mono">${d.mac} <span class="tag">${d.state === 'known-machine-new-nic' ? `${d.host ?? '?'}, new MAC` : d.state}${d.state === 'adopted' && d.host ? ` as ${d.host}` : ''}</span></h3>
      <p class="muted">first seen ${new Date(d.firstSeen).toLocaleString()}, last ${new Date(d.lastSeen).toLocaleString()}</p>
      <${Facts} f=${d.facts} />
      ${d.state === 'waiting' && roles.length ? html`<${Adopt} d=${d} roles=${roles} done=${(m: string) => { setNotice(m); void load(); }} />` : null}
    </article>`)}
  </section>`;
}
