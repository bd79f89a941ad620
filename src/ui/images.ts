/** Role images (versions, which is current, rollback) and DHCP leases. */
import { useEffect, useState } from 'preact/hooks';
import { availableRoutes, enc, get, isAdmin, post } from './api.js';
import { clock, html } from './util.js';
import { Result } from './result.js';

interface ImageRow {
  name: string; kind?: string; roles?: string[]; present?: boolean; size?: number | null;
  current?: string | null; previous?: string | null; versions?: Array<string | { version?: string; id?: string; file?: string; at?: string }>;
}

const label = (v: string | { version?: string; id?: string; file?: string }): string => (typeof v === 'string' ? v : v.version ?? v.id ?? v.file ?? '?');

export function ImagesPage() {
  const [routes, setRoutes] = useState<Set<string>>();
  const [list, setList] = useState<ImageRow[]>();
  const [r, setR] = useState<{ ok?: string; err?: Error }>();
  const load = () => get<ImageRow[] | { images: ImageRow[] }>('/api/images').then((x) => setList(Array.isArray(x) ? x : x.images), (err: Error) => setR({ err }));
  useEffect(() => { void availableRoutes().then((rs) => { setRoutes(rs); if (rs.has('GET /api/images')) void load(); }); }, []);
  if (!routes) return html`<p class="loading">Loading…</p>`;
  if (!routes.has('GET /api/images')) return html`<section><h2>Images</h2><p class="muted" data-testid="not-available">Not available: this server has no image API (use rolecast images list).</p></section>`;
  const canRollback = routes.has('POST /api/images/{}/rollback');
  const rollback = (name: string) => post(`/api/images/${enc(name)}/rollback`, {}).then(() => { setR({ ok: `${name} rolled back.` }); return load(); }, (err: Error) => setR({ err }));
  return html`<section aria-labelledby="img-h"><h2 id="img-h">Images</h2><${Result} r=${r} />
    <table class="grid static"><thead><tr><th scope="col">Image</th><th scope="col">Kind</th><th scope="col">Current</th><th scope="col" class="wide">Versions</th><th scope="col">Roles</th><th scope="col"><span class="sr">Action</span></th></tr></thead>
    <tbody>${(list ?? []).map((i) => html`<tr>
      <td>${i.name}</td><td>${i.kind ?? ''}</td><td class="mono">${i.current ?? (i.present === false ? 'missing' : '—')}</td>
      <td class="wide mono">${(i.versions ?? []).map((v) => html`<span class=${label(v) === i.current ? 'tag ok' : 'tag'}>${label(v)}</span> `)}</td>
      <td>${(i.roles ?? []).join(', ')}</td>
      <td>${canRollback && i.previous ? html`<button type="button" disabled=${!isAdmin} onClick=${() => rollback(i.name)}>Roll back to ${i.previous}</button>` : null}</td>
    </tr>`)}</tbody></table></section>`;
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
