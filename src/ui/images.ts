/** Role images (versions, which is current, rollback) and DHCP leases. */
import { useEffect, useState } from 'preact/hooks';
import { availableRoutes, enc, get, isAdmin, post } from './api.js';
import { clock, html } from './util.js';
import { Result } from './result.js';

interface VersionRow {
  file: string; version: string; current: boolean; previous: boolean; kind?: string; at?: string; by?: string;
  box?: { host: string }; pinnedOn?: string[]; pruned?: boolean;
}
interface Versions { role: string; image?: string; current?: string; previous?: string; versions: VersionRow[] }

/** One role image: its versions (built or captured, from which box), which is current, promote, rollback. */
function RoleImage({ v, reload }: { v: Versions; reload: () => void }) {
  const [r, setR] = useState<{ ok?: string; err?: Error }>();
  const act = (path: string, body: unknown, ok: string) => post(path, body).then(() => { setR({ ok }); reload(); }, (err: Error) => setR({ err }));
  return html`<article class="card" data-role=${v.role}>
    <h3>${v.role} <small class="mono">${v.image ?? ''}</small></h3>
    <table class="grid static"><thead><tr><th scope="col">Version</th><th scope="col">State</th><th scope="col" class="wide">Made</th><th scope="col"><span class="sr">Action</span></th></tr></thead>
    <tbody>${v.versions.filter((x) => !x.pruned).map((x) => html`<tr>
      <td class="mono">${x.version}</td>
      <td>${x.current ? html`<span class="tag ok">current</span>` : x.previous ? html`<span class="tag">previous</span>` : ''}${x.pinnedOn?.length ? html` <span class="tag warn">tried on ${x.pinnedOn.join(', ')}</span>` : ''}</td>
      <td class="wide">${x.kind ?? ''}${x.box ? ` from ${x.box.host}` : ''}${x.at ? `, ${clock(x.at)}` : ''}${x.by ? ` by ${x.by}` : ''}</td>
      <td>${!x.current ? html`<button type="button" disabled=${!isAdmin} onClick=${() => act(`/api/images/${enc(v.role)}/promote`, { version: x.version }, `${v.role}: ${x.version} is current`)}>Make current</button>` : null}</td>
    </tr>`)}</tbody></table>
    ${v.previous ? html`<button type="button" disabled=${!isAdmin} onClick=${() => act(`/api/images/${enc(v.role)}/rollback`, {}, `${v.role}: rolled back`)}>Roll back to the previous version</button>` : null}
    <${Result} r=${r} />
  </article>`;
}

export function ImagesPage() {
  const [routes, setRoutes] = useState<Set<string>>();
  const [list, setList] = useState<Versions[]>();
  const [err, setErr] = useState<Error>();
  // Every role that has a role image answers; maintenance roles (no rootfs image) are left out.
  const load = () => get<{ roles: string[] }>('/api/fleet')
    .then((f) => Promise.all(f.roles.map((r) => get<Versions>(`/api/images/${enc(r)}/versions`).catch(() => undefined))))
    .then((all) => setList(all.filter((x): x is Versions => x !== undefined)), (e: Error) => setErr(e));
  useEffect(() => { void availableRoutes().then((rs) => { setRoutes(rs); if (rs.has('GET /api/images/{}/versions')) void load(); }); }, []);
  if (!routes) return html`<p class="loading">Loading…</p>`;
  if (!routes.has('GET /api/images/{}/versions')) return html`<section><h2>Images</h2><p class="muted" data-testid="not-available">Not available: this server has no image API (use rolecast images list).</p></section>`;
  return html`<section aria-labelledby="img-h"><h2 id="img-h">Role images</h2><${Result} r=${err ? { err } : undefined} />
    ${list === undefined ? html`<p class="loading">Loading…</p>` : list.length === 0 ? html`<p>No role image has versions yet (rolecast images build).</p>` : null}
    ${(list ?? []).map((v) => html`<${RoleImage} v=${v} reload=${load} key=${v.role} />`)}
  </section>`;
}

interface Lease { mac: string; ip: string; state: string; expiresAt: string; host?: string }
const PAGE = 100;

export function LeasesPage() {
  const [list, setList] = useState<Lease[]>();
  const [q, setQ] = useState('');
  const [page, setPage] = useState(0);
  const [error, setError] = useState('');
  useEffect(() => { get<Lease[]>('/api/leases').then(setList, (e: Error) => setError(e.message)); }, []);
  if (error) return html`<p class="error" role="alert">${error}</p>`;
  if (!list) return html`<p class="loading">Loading leases…</p>`;
  const n = q.trim().toLowerCase();
  const rows = n ? list.filter((l) => l.mac.includes(n) || l.ip.includes(n) || (l.host ?? '').toLowerCase().includes(n)) : list;
  const pages = Math.max(1, Math.ceil(rows.length / PAGE));
  const p = Math.min(page, pages - 1);
  return html`<section aria-labelledby="l-h"><h2 id="l-h">Leases <small>(${list.length})</small></h2>
    <form class="filters" role="search" onSubmit=${(e: Event) => e.preventDefault()}>
      <label>Search <input type="search" value=${q} onInput=${(e: Event) => { setQ((e.target as HTMLInputElement).value); setPage(0); }} /></label>
      <span class="count">page ${p + 1} of ${pages}</span>
      <button type="button" disabled=${p === 0} onClick=${() => setPage(p - 1)}>Previous</button>
      <button type="button" disabled=${p >= pages - 1} onClick=${() => setPage(p + 1)}>Next</button>
    </form>
    <table class="grid static"><thead><tr><th scope="col">MAC</th><th scope="col">Address</th><th scope="col">State</th><th scope="col">Host</th><th scope="col" class="wide">Expires</th></tr></thead>
    <tbody>${rows.slice(p * PAGE, (p + 1) * PAGE).map((l) => html`<tr><td class="mono">${l.mac}</td><td class="mono">${l.ip}</td><td>${l.state}</td>
      <td>${l.host ? html`<a href=${`#/m/${enc(l.host)}`}>${l.host}</a>` : '—'}</td><td class="wide">${clock(l.expiresAt)}</td></tr>`)}</tbody></table></section>`;
}
