/** The outcome of an action: a status line, or the error with the profile issues it named. */
import { ApiError } from './api.js';
import { html } from './util.js';

export function Result({ r }: { r: { ok?: string; err?: ApiError | Error } | undefined }) {
  if (!r) return null;
  if (r.ok) return html`<p class="ok" role="status">${r.ok}</p>`;
  const e = r.err!;
  return html`<div class="error" role="alert"><p>${e.message}</p>${e instanceof ApiError && e.issues.length ? html`<ul class="mono">${e.issues.map((i) => html`<li>${i}</li>`)}</ul>` : null}</div>`;
}

