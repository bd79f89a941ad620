/** BMC power on the machine page: state, cycle, PXE once — only where the server has a BMC route. */
import { useEffect, useState } from 'preact/hooks';
import { ApiError, enc, get, isAdmin, post } from './api.js';
import { html } from './util.js';
import { Result } from './result.js';

interface Power { state?: string | null; ok?: boolean; error?: string; bmc?: unknown }

export function PowerPanel({ host, routes }: { host: string; routes: Set<string> }) {
  const has = routes.has('GET /api/machines/{}/power');
  const [p, setP] = useState<Power>();
  const [r, setR] = useState<{ ok?: string; err?: Error }>();
  const [busy, setBusy] = useState(false);
  const [noBmc, setNoBmc] = useState(false);
  const status = () => get<Power>(`/api/machines/${enc(host)}/power`).then(setP, (err: Error) => {
    if (err instanceof ApiError && err.code === 'E_NO_BMC') setNoBmc(true);
    else setR({ err });
  });
  useEffect(() => { if (has) void status(); }, [has, host]);
  if (!has) return html`<div class="action"><h4>Power</h4><p class="muted">Not available: no BMC support on this server.</p></div>`;
  if (noBmc) return html`<div class="action"><h4>Power</h4><p class="muted">No BMC configured for ${host} (a <code>bmc:</code> entry on its line in machines.yaml).</p></div>`;
  const act = (op: string, label: string) => {
    setBusy(true);
    post<Power>(`/api/machines/${enc(host)}/power`, { op })
      .then((res) => { setR({ ok: `${label}: ${res.state ? `power is ${res.state}` : 'done'}` }); return status(); }, (err: Error) => setR({ err }))
      .finally(() => setBusy(false));
  };
  return html`<div class="action"><h4>Power</h4>
    <p>State: <strong data-testid="power-state">${p?.state ?? (p?.error ? `unknown (${p.error})` : '…')}</strong></p>
    <button type="button" onClick=${() => { void status(); }}>Refresh</button>
    <button type="button" disabled=${!isAdmin || busy} onClick=${() => act('cycle', 'Power cycle')}>Power cycle</button>
    <button type="button" disabled=${!isAdmin || busy} onClick=${() => act('pxe', 'PXE once')}>PXE once</button>
    <${Result} r=${r} />
  </div>`;
}
