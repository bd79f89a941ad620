/** A machine's boot timeline: events split into boots, each drawn as the chain DHCP → … → booted. */
import type { BootEvent } from './live.js';
import { clock, html, STEPS, stageClass, stepOf } from './util.js';

const GAP_MS = 10 * 60_000;

/**
 * Split a timeline into boots. A boot begins with the DHCP DISCOVER that follows the end of the last
 * one (booted/failed) or a long silence; the PXE ROM, iPXE and the initramfs each do DHCP inside one boot.
 */
export function splitBoots(events: readonly BootEvent[]): BootEvent[][] {
  const boots: BootEvent[][] = [];
  let cur: BootEvent[] = [];
  let ended = false;
  for (const e of events) {
    const prev = cur.at(-1);
    const gap = prev ? Date.parse(e.at) - Date.parse(prev.at) > GAP_MS : false;
    if (cur.length && e.stage === 'dhcp-discover' && (ended || gap)) {
      boots.push(cur);
      cur = [];
      ended = false;
    }
    cur.push(e);
    if (e.stage === 'booted' || e.stage === 'failed') ended = true;
  }
  if (cur.length) boots.push(cur);
  return boots;
}

function Chain({ events: all }: { events: BootEvent[] }) {
  // An unsigned phone-home is a claim anyone could make: listed below, it moves no step of the chain.
  const events = all.filter((e) => e.verified !== false);
  const reached = new Set(events.map((e) => stepOf(e.stage)));
  const failed = events.find((e) => stepOf(e.stage) === 'failed');
  return html`<ol class="chain" aria-label="Boot chain">
    ${STEPS.map((s) => html`<li class=${reached.has(s) ? 'done' : ''}>${s}</li>`)}
    ${failed ? html`<li class="failed">failed: ${failed.detail ?? failed.stage}</li>` : null}
  </ol>`;
}

export function Boot({ events, title }: { events: BootEvent[]; title: string }) {
  const t0 = Date.parse(events[0]?.at ?? '');
  return html`<section class="boot">
    <h4>${title} <small>${events[0] ? clock(events[0].at) : ''}</small></h4>
    <${Chain} events=${events} />
    <table class="events"><thead><tr><th scope="col">+s</th><th scope="col">Stage</th><th scope="col">Detail</th><th scope="col" class="wide">From</th></tr></thead>
    <tbody>${events.map((e) => html`<tr>
      <td class="mono" title=${e.at}>${((Date.parse(e.at) - t0) / 1000).toFixed(1)}</td>
      <td><span class=${stageClass(e.stage)}>${e.stage}</span>${e.verified === false
        ? html` <span class="tag warn" title="unsigned phone-home: anyone on the network could have sent it">unverified claim</span>` : null}</td>
      <td class="detail">${e.stage === 'console' ? html`<pre class="screen">${e.detail ?? ''}</pre>` : e.detail ?? ''}</td>
      <td class="wide mono">${e.address ?? ''}</td>
    </tr>`)}</tbody></table>
  </section>`;
}

export function Timeline({ events }: { events: BootEvent[] }) {
  if (!events.length) return html`<p>No boot seen yet.</p>`;
  const boots = splitBoots(events).reverse().slice(0, 4);
  return html`<div class="timeline" data-testid="timeline">
    ${boots.map((b, i) => html`<${Boot} events=${b} title=${i === 0 ? 'This boot' : `Boot −${i}`} />`)}
  </div>`;
}
