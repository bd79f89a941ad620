/**
 * The fleet: every machine in one virtualised table (only the rows in view are in the DOM, so 10,000
 * machines scroll like 10), filtered by a search box and selects, live stages from the SSE stream.
 */
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { availableRoutes, get } from './api.js';
import { live } from './live.js';
import { ago, html, stageClass } from './util.js';

export interface FleetRow {
  host: string;
  macs: string[];
  role: string;
  homeRole: string;
  bootOnce: string | null;
  ip: string;
  changed: boolean | null;
  stage: string | null;
  stageAt: string | null;
  firmware: string | null;
  power?: { state: string; at: string } | null;
}

interface Fleet { version: string; roles: string[]; machines: FleetRow[] }

const ROW_H = 36;
const OVERSCAN = 8;

function currentStage(r: FleetRow): { stage: string | null; at: string | null } {
  for (const mac of r.macs) {
    const e = live.latest.get(mac);
    if (e) return { stage: e.stage, at: e.at };
  }
  return { stage: r.stage, at: r.stageAt };
}

function matches(r: FleetRow, q: string, role: string, stage: string, changedOnly: boolean): boolean {
  if (role && r.role !== role && r.homeRole !== role) return false;
  if (changedOnly && r.changed !== true) return false;
  if (stage) {
    const s = currentStage(r).stage;
    if (stage === 'never' ? s !== null : stage === 'busy' ? (s === null || s === 'booted' || s === 'failed') : s !== stage) return false;
  }
  if (!q) return true;
  return r.host.toLowerCase().includes(q) || r.ip.includes(q) || r.role.toLowerCase().includes(q) || r.macs.some((m) => m.includes(q));
}

export function FleetPage() {
  const [fleet, setFleet] = useState<Fleet | undefined>();
  const [error, setError] = useState('');
  const [q, setQ] = useState('');
  const [role, setRole] = useState('');
  const [stage, setStage] = useState('');
  const [changedOnly, setChangedOnly] = useState(false);
  const [top, setTop] = useState(0);
  const [height, setHeight] = useState(600);
  const [, setTick] = useState(0);
  const [showPower, setShowPower] = useState(false);
  const scroller = useRef<HTMLDivElement>(null);

  useEffect(() => {
    get<Fleet>('/api/fleet').then(setFleet, (e: Error) => setError(e.message));
    // The power column only where the server has BMC support.
    void availableRoutes().then((r) => setShowPower(r.has('GET /api/machines/{}/power')));
    // Re-render on each batch of live events (not per event) and every 10 s for the "ago" times.
    const off = live.subscribe(() => setTick((t) => t + 1));
    setTick((t) => t + 1); // events applied between the first render and this subscription
    const iv = window.setInterval(() => setTick((t) => t + 1), 10_000);
    return () => { off(); clearInterval(iv); };
  }, []);

  useEffect(() => {
    const el = scroller.current;
    if (!el) return;
    const measure = () => setHeight(el.clientHeight || 600);
    measure();
    const ro = new ResizeObserver(measure);
    ro.observe(el);
    return () => ro.disconnect();
  }, [fleet !== undefined]);

  const needle = q.trim().toLowerCase();
  const rows = useMemo(() => (fleet?.machines ?? []).filter((r) => matches(r, needle, role, stage, changedOnly)), [fleet, needle, role, stage, changedOnly, stage ? live.received : 0]);

  if (error) return html`<p class="error" role="alert">Cannot load the fleet: ${error}</p>`;
  if (!fleet) return html`<p class="loading">Loading the fleet…</p>`;

  const first = Math.max(0, Math.floor(top / ROW_H) - OVERSCAN);
  const last = Math.min(rows.length, Math.ceil((top + height) / ROW_H) + OVERSCAN);
  const visible = rows.slice(first, last);
  const now = Date.now();
  let raf = 0;
  const onScroll = (e: Event) => {
    const t = (e.currentTarget as HTMLDivElement).scrollTop;
    cancelAnimationFrame(raf);
    raf = requestAnimationFrame(() => setTop(t));
  };

  return html`<section class="fleet" aria-labelledby="fleet-h">
    <h2 id="fleet-h">Fleet</h2>
    <form class="filters" role="search" onSubmit=${(e: Event) => e.preventDefault()}>
      <label>Search <input type="search" id="fleet-search" placeholder="host, MAC, address, role" value=${q} onInput=${(e: Event) => { setQ((e.target as HTMLInputElement).value); setTop(0); if (scroller.current) scroller.current.scrollTop = 0; }} /></label>
      <label>Role <select value=${role} onChange=${(e: Event) => setRole((e.target as HTMLSelectElement).value)}>
        <option value="">any</option>${fleet.roles.map((r) => html`<option value=${r}>${r}</option>`)}
      </select></label>
      <label>Stage <select value=${stage} onChange=${(e: Event) => setStage((e.target as HTMLSelectElement).value)}>
        <option value="">any</option><option value="busy">booting now</option><option value="booted">booted</option><option value="failed">failed</option><option value="never">never seen</option>
      </select></label>
      <label class="check"><input type="checkbox" checked=${changedOnly} onChange=${(e: Event) => setChangedOnly((e.target as HTMLInputElement).checked)} /> next boot changes</label>
      <span class="count" aria-live="polite" data-testid="fleet-count">${rows.length} of ${fleet.machines.length} machines</span>
    </form>
    <div class="scroller" ref=${scroller} onScroll=${onScroll} tabindex="0" aria-label="Machines">
      <table class="grid" aria-rowcount=${rows.length + 1}>
        <thead><tr>
          <th scope="col">Host</th><th scope="col">Role</th><th scope="col" class="wide">MACs</th><th scope="col">Address</th>
          <th scope="col" class="wide">Firmware</th><th scope="col">Stage</th><th scope="col" class="wide">Since</th><th scope="col">Next boot</th>
          ${showPower ? html`<th scope="col" class="wide">Power</th>` : null}
        </tr></thead>
        <tbody>
          <tr class="pad" style=${`height:${first * ROW_H}px`} aria-hidden="true"></tr>
          ${visible.map((r, i) => {
            const s = currentStage(r);
            return html`<tr key=${r.host} data-host=${r.host} aria-rowindex=${first + i + 2} style=${`height:${ROW_H}px`}>
              <td><a href=${`#/m/${encodeURIComponent(r.host)}`}>${r.host}</a></td>
              <td>${r.role}${r.bootOnce ? html` <span class="tag" title=${`boots ${r.bootOnce} once, then ${r.homeRole}`}>once</span>` : null}</td>
              <td class="wide mono">${r.macs.join(' ')}</td>
              <td class="mono">${r.ip}</td>
              <td class="wide">${r.macs.map((m) => live.firmware.get(m)).find((f) => f) ?? r.firmware ?? '—'}</td>
              <td><span class=${stageClass(s.stage)} data-testid="stage">${s.stage ?? 'never seen'}</span></td>
              <td class="wide" title=${s.at ?? ''}>${ago(s.at, now)}</td>
              <td>${r.changed ? html`<span class="tag warn" title="its files differ from what it was last served">changes</span>` : r.changed === false ? 'same' : '—'}</td>
              ${showPower ? html`<td class="wide" title=${r.power ? `read from the BMC ${r.power.at}` : 'no reading yet'}>${r.power ? `${r.power.state} (${ago(r.power.at, now)})` : '—'}</td>` : null}
            </tr>`;
          })}
          <tr class="pad" style=${`height:${(rows.length - last) * ROW_H}px`} aria-hidden="true"></tr>
        </tbody>
      </table>
    </div>
  </section>`;
}
