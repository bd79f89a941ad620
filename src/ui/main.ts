/**
 * The rolecast web UI: a hash-routed Preact app (htm templates, no JSX step), mounted into the shell
 * /ui/ serves. Pages: fleet (#/), machine (#/m/<host>), discovery inbox, images, leases.
 */
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { csrf, get, level } from './api.js';
import { live, type LiveState } from './live.js';
import { html } from './util.js';
import { FleetPage } from './fleet.js';
import { MachinePage } from './machine.js';
import { InboxPage } from './inbox.js';
import { ImagesPage, LeasesPage } from './images.js';

interface Status { version: string; lastReload: { at: string; ok: boolean; issues?: string[] } | null }

function useHash(): string {
  const [h, setH] = useState(location.hash);
  useEffect(() => {
    const on = () => setH(location.hash);
    window.addEventListener('hashchange', on);
    return () => window.removeEventListener('hashchange', on);
  }, []);
  return h;
}

/** "The last profile edit was refused": shown until a later reload succeeds. */
function Banner() {
  const [s, setS] = useState<Status>();
  useEffect(() => {
    const load = () => get<Status>('/api/profiles/status').then(setS, () => undefined);
    void load();
    const iv = window.setInterval(load, 5000);
    return () => clearInterval(iv);
  }, []);
  const r = s?.lastReload;
  if (!r || r.ok) return null;
  return html`<div class="banner" role="alert" data-testid="refused-banner">
    <strong>The last profile edit was refused</strong> (${new Date(r.at).toLocaleTimeString()}); still serving version ${s?.version}. Fix:
    <ul class="mono">${(r.issues ?? ['the profiles could not be read (see the server log)']).map((i) => html`<li>${i}</li>`)}</ul>
  </div>`;
}

function LiveBadge() {
  const [state, setState] = useState<LiveState>(live.state);
  useEffect(() => {
    const off = live.subscribe(() => setState(live.state));
    setState(live.state); // it may have opened between the first render and this effect
    return off;
  }, []);
  return html`<span class=${`live ${state}`} role="status" data-testid="live">${state === 'live' ? '● live' : state}</span>`;
}

function route(hash: string) {
  const m = /^#\/m\/(.+)$/.exec(hash);
  if (m) return html`<${MachinePage} host=${decodeURIComponent(m[1]!)} key=${m[1]} />`;
  if (hash === '#/inbox') return html`<${InboxPage} />`;
  if (hash === '#/images') return html`<${ImagesPage} />`;
  if (hash === '#/leases') return html`<${LeasesPage} />`;
  return html`<${FleetPage} />`;
}

function App() {
  const hash = useHash();
  const nav = (h: string, label: string) => {
    const cur = h === '#/' ? !/^#\/(inbox|images|leases)/.test(hash) : hash === h;
    return html`<a href=${h} aria-current=${cur ? 'page' : undefined}>${label}</a>`;
  };
  return html`<header class="top">
      <h1><a href="#/">rolecast</a></h1>
      <nav aria-label="Sections">${nav('#/', 'Fleet')}${nav('#/inbox', 'Discovery')}${nav('#/images', 'Images')}${nav('#/leases', 'Leases')}</nav>
      <${LiveBadge} />
      <span class="tag" title="session level">${level === 'admin' ? 'admin' : 'read-only'}</span>
      ${csrf ? html`<form method="post" action="/ui/logout" class="logout"><input type="hidden" name="csrf" value=${csrf} /><button type="submit">Log out</button></form>` : null}
    </header>
    <${Banner} />
    <main id="main">${route(hash)}</main>`;
}

// "/" jumps to the page's search box (as on GitHub and most consoles), unless typing in a field.
window.addEventListener('keydown', (e) => {
  const t = e.target as HTMLElement | null;
  if (e.key !== '/' || e.ctrlKey || e.metaKey || e.altKey || (t && /^(INPUT|SELECT|TEXTAREA)$/.test(t.tagName))) return;
  const box = document.querySelector<HTMLInputElement>('main input[type="search"]');
  if (box) { e.preventDefault(); box.focus(); }
});

live.start();
const root = document.getElementById('app')!;
root.textContent = ''; // the shell's "Loading…": render() adds to what is there
render(html`<${App} />`, root);
