/**
 * /ui: the web UI, served by the same process as the API (no second server, no CDN: it works on an
 * offline provisioning network). The app is a Preact + htm bundle built into dist/ui by `npm run build`
 * (scripts/build-ui.mjs); the server renders only the login form and the shell.
 *
 *   GET  /ui/            the app (session cookie or `Authorization: Bearer`), else 303 to the login form
 *   GET  /ui/login       the login form;  POST /ui/login  token → session cookie
 *   POST /ui/logout      ends the session (CSRF field)
 *   GET  /ui/assets/<f>  app.js, app.css (no secrets in them: public, so the login page has its style)
 */
import { readFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { tokenLevel, type TokenLevel, type TokenSet } from '../auth.js';
import { clearCookie, parseCookies, sameOrigin, sessionOf, setCookie, COOKIE, type Sessions } from './session.js';
import { loginPage, shellPage } from './pages.js';

/** dist/ui of this package: src/http/ui and dist/http/ui are both three levels below the root. */
export const UI_DIST = resolve(dirname(fileURLToPath(import.meta.url)), '../../../dist/ui');

const ASSETS: Record<string, string> = { 'app.js': 'text/javascript; charset=utf-8', 'app.css': 'text/css; charset=utf-8' };

// The app loads only its own script and style and talks only to this server. Referrer same-origin, not
// no-referrer: with no-referrer Chromium sends "Origin: null" on form posts, and the origin check refuses it.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

function html(reply: FastifyReply, status: number, body: string): FastifyReply {
  return reply.code(status).headers({ 'content-type': 'text/html; charset=utf-8', 'content-security-policy': CSP, 'x-frame-options': 'DENY', 'referrer-policy': 'same-origin', 'cache-control': 'no-store' }).send(body);
}

export interface UiDeps {
  tokens: TokenSet;
  sessions: Sessions;
  /** Where the built assets are (tests may point elsewhere). */
  distDir?: string;
}

function formField(body: unknown, name: string): string | undefined {
  if (typeof body !== 'string' || body.length > 4096) return undefined;
  const v = new URLSearchParams(body).get(name);
  return v ?? undefined;
}

export function registerUi(app: FastifyInstance, deps: UiDeps): void {
  const dist = deps.distDir ?? UI_DIST;
  const cache = new Map<string, { body: Buffer; etag: string }>();

  app.register(async (ui) => {
    // HTML forms post urlencoded bodies; only these routes parse them.
    ui.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 4096 }, (_req, body, done) => done(null, body));

    ui.get('/ui', { schema: { hide: true } }, async (_req, reply) => reply.redirect('/ui/', 302));

    ui.get('/ui/', { schema: { hide: true } }, async (req, reply) => {
      const level: TokenLevel | undefined = tokenLevel(deps.tokens, req.headers.authorization) ?? req.sessionLevel;
      if (!level) return reply.redirect('/ui/login', 303);
      const s = req.headers.authorization ? undefined : sessionOf(deps.sessions, req);
      return html(reply, 200, shellPage(level, s?.csrf));
    });

    ui.get('/ui/login', { schema: { hide: true } }, async (_req, reply) => html(reply, 200, loginPage()));

    ui.post('/ui/login', { schema: { hide: true }, bodyLimit: 4096 }, async (req: FastifyRequest, reply) => {
      if (!sameOrigin(req)) return html(reply, 403, loginPage('This form was posted from another site.'));
      const token = formField(req.body, 'token') ?? '';
      const level = token ? tokenLevel(deps.tokens, `Bearer ${token}`) : undefined;
      if (!level) {
        req.log.info({ address: req.socket.remoteAddress }, 'UI login refused');
        return html(reply, 401, loginPage(deps.tokens.admin.length + deps.tokens.read.length === 0
          ? 'No API tokens are configured on this server (http.tokens), so nobody can log in.'
          : 'That token was refused.'));
      }
      const s = deps.sessions.create(level);
      req.log.info({ level }, 'UI login');
      return reply.header('set-cookie', setCookie(s, Math.floor(deps.sessions.ttlMs / 1000))).redirect('/ui/', 303);
    });

    ui.post('/ui/logout', { schema: { hide: true }, bodyLimit: 4096 }, async (req, reply) => {
      const s = sessionOf(deps.sessions, req, formField(req.body, 'csrf'));
      if (s) deps.sessions.drop(s.id);
      else if (parseCookies(req.headers.cookie)[COOKIE]) return reply.code(403).send({ code: 'E_CSRF', message: 'logout needs the CSRF value of the session' });
      return reply.header('set-cookie', clearCookie).redirect('/ui/login', 303);
    });

    ui.get<{ Params: { file: string } }>('/ui/assets/:file', { schema: { hide: true } }, async (req, reply) => {
      const type = ASSETS[req.params.file];
      if (!type) return reply.code(404).send({ code: 'E_NOT_FOUND', message: `no UI asset ${req.params.file}` });
      let a = cache.get(req.params.file);
      if (!a) {
        const body = await readFile(join(dist, req.params.file)).catch(() => undefined);
        if (!body) return reply.code(503).send({ code: 'E_UI_NOT_BUILT', message: `${join(dist, req.params.file)} is missing: run npm run build` });
        a = { body, etag: `"${createHash('sha256').update(body).digest('hex').slice(0, 20)}"` };
        cache.set(req.params.file, a);
      }
      if (req.headers['if-none-match'] === a.etag) return reply.code(304).send();
      return reply.headers({ 'content-type': type, etag: a.etag, 'cache-control': 'no-cache' }).send(a.body);
    });
  });
}
