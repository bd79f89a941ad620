/**
 * One machine: its inventory line, the files it gets (never their contents), its boots, and the
 * actions an operator takes on it. Actions need an admin session; a read-only one sees them disabled.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import { availableRoutes, enc, get, isAdmin, post, put } from './api.js';
import { live, type BootEvent } from './live.js';
import { Timeline } from './timeline.js';
import { html } from './util.js';
import { PowerPanel } from './power.js';
import { Result } from './result.js';

interface FileRow { path: string; mode: string; size?: number; secret: boolean; sha256?: string }
interface Detail {
  host: string; role: string; bootOnce: string | null; confirmWipe: boolean;
  source: { file: string; line: number; text: string | null };
  files: FileRow[]; changed: boolean | null; lastServedHash: string | null; hash: string | null;
  targets: Array<{ name: string; kind: string; destructive: boolean }>;
  lastServedAt: string | null; lastServedRole: string | null;
}
interface Summary { host: string; macs: string[]; role: string; ip: string; addresses: Record<string, string>; lease: string | null }

function RoleForm({ d, reload }: { d: Detail; reload: () => void }) {
  const [role, setRole] = useState(d.role);
  const [r, setR] = useState<{ ok?: string; err?: Error }>();
  // Follow the inventory when it changes (this page or another operator); the outcome line stays.
  useEffect(() => setRole(d.role), [d.role]);
  const roles = d.targets.filter((t) => t.kind !== 'maintenance').map((t) => t.name);
  const submit = (e: Event) => {
    e.preventDefault();
    put(`/api/machines/${enc(d.host)}/role`, { role }).then(() => { setR({ ok: `${d.host} is now ${role}: it boots as ${role} next time.` }); reload(); }, (err: Error) => setR({ err }));
  };
  return html`<form class="action" onSubmit=${submit}>
    <h4>Role</h4>
    <label for="role-select">Role</label>
    <select id="role-select" value=${role} disabled=${!isAdmin} onChange=${(e: Event) => setRole((e.target as HTMLSelectElement).value)}>
      ${roles.map((n) => html`<option value=${n}>${n}</option>`)}
    </select>
    <button type="submit" disabled=${!isAdmin || role === d.role}>Change role</button>
    <${Result} r=${r} />
  </form>`;
}

function BootOnceForm({ d, reload }: { d: Detail; reload: () => void }) {
  const targets = d.targets.filter((t) => t.name !== d.role).map((t) => t);
  const [target, setTarget] = useState(targets[0]?.name ?? '');
  const [confirm, setConfirm] = useState('');
  const [r, setR] = useState<{ ok?: string; err?: Error }>();
  const destructive = targets.find((t) => t.name === target)?.destructive ?? false;
  const send = (t: string | null) => post(`/api/machines/${enc(d.host)}/boot-once`, { target: t, ...(destructive && t ? { confirm } : {}) })
    .then(() => { setR({ ok: t ? `${d.host} boots ${t} once, then ${d.role} again.` : 'Boot-once cleared.' }); setConfirm(''); reload(); }, (err: Error) => setR({ err }));
  return html`<form class="action" onSubmit=${(e: Event) => { e.preventDefault(); void send(target); }}>
    <h4>Boot once</h4>
    ${d.bootOnce ? html`<p>Set: <strong>${d.bootOnce}</strong> <button type="button" disabled=${!isAdmin} onClick=${() => send(null)}>Clear</button></p>` : null}
    <label for="once-select">Target</label>
    <select id="once-select" value=${target} disabled=${!isAdmin} onChange=${(e: Event) => setTarget((e.target as HTMLSelectElement).value)}>
      ${targets.map((t) => html`<option value=${t.name}>${t.name}${t.destructive ? ' (destroys disks)' : ''}</option>`)}
    </select>
    ${destructive ? html`<div class="danger">
      <p>${target} erases every disk of ${d.host}.${d.confirmWipe ? '' : ' This machine does not set confirm_wipe: true, so it is refused.'}</p>
      <label for="once-confirm">Type the host name to confirm</label>
      <input id="once-confirm" value=${confirm} autocomplete="off" onInput=${(e: Event) => setConfirm((e.target as HTMLInputElement).value)} />
    </div>` : null}
    <button type="submit" disabled=${!isAdmin || !target || (destructive && confirm !== d.host)}>Boot once</button>
    <${Result} r=${r} />
  </form>`;
}

function Commission({ host, routes, d, reload }: { host: string; routes: Set<string>; d: Detail; reload: () => void }) {
  const [r, setR] = useState<{ ok?: string; err?: Error }>();
  const viaRoute = routes.has('POST /api/machines/{}/commission');
  const viaTarget = d.targets.some((t) => t.name === 'discover');
  if (!viaRoute && !viaTarget) return html`<div class="action"><h4>Commission</h4><p class="muted">Not available on this server (no commissioning image).</p></div>`;
  const go = () => (viaRoute ? post(`/api/machines/${enc(host)}/commission`, {}) : post(`/api/machines/${enc(host)}/boot-once`, { target: 'discover' }))
    .then(() => { setR({ ok: `${host} collects its facts on its next boot.` }); reload(); }, (err: Error) => setR({ err }));
  return html`<div class="action"><h4>Commission</h4><p>Refresh this machine's hardware facts on its next boot.</p>
    <button type="button" disabled=${!isAdmin} onClick=${go}>Commission on next boot</button><${Result} r=${r} /></div>`;
}

function Files({ d }: { d: Detail }) {
  return html`<section aria-labelledby="files-h"><h3 id="files-h">Files it gets <small>(${d.files.length})</small></h3>
    <p data-testid="next-boot">${d.changed === null ? 'Never served yet.' : d.changed
      ? html`<span class="tag warn">Next boot changes</span> its files differ from what it was last served (${d.lastServedRole} at ${d.lastServedAt ? new Date(d.lastServedAt).toLocaleString() : '?'}: content ${d.lastServedHash?.slice(0, 12)}; now ${d.role}: ${d.hash?.slice(0, 12)}).`
      : html`Next boot: the same files it was last served (${d.lastServedRole}, ${d.hash?.slice(0, 12)}).`}</p>
    <table class="files"><thead><tr><th scope="col">Path</th><th scope="col">Mode</th><th scope="col">Size</th><th scope="col" class="wide">sha256</th></tr></thead>
    <tbody>${d.files.map((f) => html`<tr><td class="mono">${f.path}</td><td class="mono">${f.mode}</td><td>${f.secret ? '—' : f.size}</td>
      <td class="wide mono">${f.secret ? html`<span class="tag secret" title="contents, size and hash are never shown; it arrives in the boot-time bundle">secret</span>` : f.sha256?.slice(0, 16)}</td></tr>`)}</tbody></table>
  </section>`;
}

export function MachinePage({ host }: { host: string }) {
  const [d, setD] = useState<Detail>();
  const [s, setS] = useState<Summary>();
  const [events, setEvents] = useState<BootEvent[]>([]);
  const [routes, setRoutes] = useState<Set<string>>(new Set());
  const [error, setError] = useState('');
  const load = () => {
    get<Detail>(`/api/machines/${enc(host)}/files`).then(setD, (e: Error) => setError(e.message));
    get<Summary>(`/api/machines/${enc(host)}`).then(setS, (e: Error) => setError(e.message));
  };
  const macs = useRef<string[]>([]);
  macs.current = s?.macs ?? [];
  useEffect(() => {
    load();
    void availableRoutes().then(setRoutes);
    // Subscribe before fetching the timeline, so no event falls between the two; the ones that arrive
    // first are merged into the fetched list without duplicates.
    let fetched = false;
    const early: BootEvent[] = [];
    const key = (e: BootEvent) => `${e.at}|${e.mac}|${e.stage}|${e.detail ?? ''}`;
    const off = live.subscribe((batch) => {
      const mine = batch.filter((e) => e.host === host || macs.current.includes(e.mac));
      if (!mine.length) return;
      if (!fetched) early.push(...mine);
      else setEvents((old) => [...old, ...mine]);
    });
    get<BootEvent[]>(`/api/machines/${enc(host)}/events`).then((list) => {
      fetched = true;
      const seen = new Set(list.map(key));
      setEvents([...list, ...early.filter((e) => !seen.has(key(e)))]);
    }, () => { fetched = true; });
    return off;
  }, [host]);

  if (error) return html`<p class="error" role="alert">${error}</p>`;
  if (!d || !s) return html`<p class="loading">Loading ${host}…</p>`;
  return html`<article class="machine" aria-labelledby="m-h">
    <p><a href="#/">← Fleet</a></p>
    <h2 id="m-h">${d.host} <span class="tag">${d.bootOnce ? `${d.bootOnce} once, then ${d.role}` : d.role}</span></h2>
    <dl class="facts">
      <dt>Address</dt><dd class="mono">${s.ip}${Object.entries(s.addresses).map(([n, a]) => ` ${n}=${a}`).join('')}</dd>
      <dt>MACs</dt><dd class="mono">${s.macs.join(' ')}</dd>
      <dt>Lease</dt><dd class="mono">${s.lease ?? '—'}</dd>
      <dt>Inventory line</dt><dd><code data-testid="yaml-line">${d.source.file}:${d.source.line}: ${d.source.text ?? ''}</code></dd>
    </dl>
    <section class="actions" aria-label="Actions">
      ${isAdmin ? null : html`<p class="muted">Read-only session: actions need an admin token.</p>`}
      <${RoleForm} d=${d} reload=${load} />
      <${BootOnceForm} d=${d} reload=${load} />
      <${PowerPanel} host=${d.host} routes=${routes} />
      <${Commission} host=${d.host} routes=${routes} d=${d} reload=${load} />
    </section>
    <section aria-labelledby="tl-h"><h3 id="tl-h">Boots</h3><${Timeline} events=${events} /></section>
    <${Files} d=${d} />
  </article>`;
}
