/**
 * The two HTML documents the UI server renders itself: the login form (works without JavaScript) and
 * the shell the Preact app mounts into. Everything else is drawn by the app from the JSON API.
 */
import type { TokenLevel } from '../auth.js';

const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(title: string, head: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/ui/assets/app.css">
${head}
</head>
<body>
${body}
</body>
</html>
`;
}

export function loginPage(message?: string): string {
  return page('rolecast — log in', '', `<main class="login">
<h1>rolecast</h1>
<form method="post" action="/ui/login">
<label for="token">API token (read-only or admin)</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
${message ? `<p class="error" role="alert">${esc(message)}</p>` : ''}
<button type="submit">Log in</button>
</form>
<p class="hint">Tokens are set in the server config (<code>http.tokens.admin</code>, <code>http.tokens.read</code>).</p>
</main>`);
}

/** The app shell: the CSRF value and level go to the app in meta tags (never the token). */
export function shellPage(level: TokenLevel, csrf: string | undefined): string {
  return page('rolecast', `<meta name="rolecast-level" content="${level}">
<meta name="rolecast-csrf" content="${esc(csrf ?? '')}">`, `<div id="app"><p class="loading">Loading…</p></div>
<noscript>The rolecast UI needs JavaScript; the same data is in the JSON API under /api.</noscript>
<script type="module" src="/ui/assets/app.js"></script>`);
}
