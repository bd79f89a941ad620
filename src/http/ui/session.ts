/**
 * Web UI sessions on top of the API tokens (src/http/auth.ts): an operator logs in once with a read
 * or admin token and gets a session cookie of that level; the token itself never goes into the cookie.
 *
 * - The cookie is HttpOnly (scripts cannot read it) and SameSite=Strict (no other site's page can make
 *   the browser send it), Path=/ so the UI's fetches to /api/* carry it.
 * - A POST/PUT/PATCH/DELETE counts as the session only with the session's CSRF value in the
 *   `x-rolecast-csrf` header (or a `csrf` form field for the logout form) and, when the browser sends
 *   an Origin, that Origin on this host: the OWASP "synchronizer token" plus an origin check, so a forged
 *   cross-site form gets nothing even from a browser that ignores SameSite.
 * - Sessions live in memory (a restart logs everyone out: nothing to steal from disk), expire after
 *   `ttlMs` idle, and are bounded (the oldest goes first).
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { TokenLevel } from '../auth.js';

export const COOKIE = 'rolecast_session';
export const CSRF_HEADER = 'x-rolecast-csrf';

export interface Session {
  id: string;
  csrf: string;
  level: TokenLevel;
  expires: number;
}

export class Sessions {
  private readonly map = new Map<string, Session>();

  constructor(readonly ttlMs = 8 * 3600_000, private readonly max = 1000, private readonly now: () => number = Date.now) {}

  create(level: TokenLevel): Session {
    while (this.map.size >= this.max) this.map.delete(this.map.keys().next().value!);
    const s: Session = { id: randomBytes(32).toString('base64url'), csrf: randomBytes(24).toString('base64url'), level, expires: this.now() + this.ttlMs };
    this.map.set(s.id, s);
    return s;
  }

  /** The live session with this id; using it extends it (idle timeout) and keeps it newest. */
  get(id: string): Session | undefined {
    const s = this.map.get(id);
    if (!s) return undefined;
    this.map.delete(id);
    if (s.expires <= this.now()) return undefined;
    s.expires = this.now() + this.ttlMs;
    this.map.set(id, s);
    return s;
  }

  drop(id: string): void {
    this.map.delete(id);
  }
}

export function parseCookies(header: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    out[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
  }
  return out;
}

export function setCookie(s: Session, maxAgeS: number): string {
  return `${COOKIE}=${s.id}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAgeS}`;
}

export const clearCookie = `${COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0`;

const SAFE = new Set(['GET', 'HEAD', 'OPTIONS']);

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Did the browser say the request came from a page of this very server (when it says anything)? */
export function sameOrigin(req: FastifyRequest): boolean {
  const origin = req.headers.origin;
  if (origin === undefined) return true; // non-browser clients and same-origin GETs send none
  try {
    return new URL(origin).host === req.headers.host;
  } catch {
    return false;
  }
}

/** The session a request carries, when its cookie is live and, for a state change, its CSRF value matches. */
export function sessionOf(sessions: Sessions, req: FastifyRequest, formCsrf?: string): Session | undefined {
  const id = parseCookies(req.headers.cookie)[COOKIE];
  const s = id ? sessions.get(id) : undefined;
  if (!s) return undefined;
  if (SAFE.has(req.method)) return s;
  const sent = req.headers[CSRF_HEADER] ?? formCsrf;
  if (typeof sent !== 'string' || !same(sent, s.csrf) || !sameOrigin(req)) {
    req.log.info({ url: req.url }, 'UI session ignored: CSRF value or origin missing or wrong');
    return undefined;
  }
  return s;
}

/**
 * Register before any route: marks each request with its session level, which requireToken() accepts
 * like a bearer token of that level. A request with a bearer header is judged on the header alone.
 */
export function registerSessionHook(app: FastifyInstance, sessions: Sessions): void {
  // A callback hook, not an async one: fastify then makes no promise per request for it.
  app.addHook('onRequest', (req, _reply, done) => {
    if (!req.headers.authorization && req.headers.cookie) {
      const s = sessionOf(sessions, req);
      if (s) req.sessionLevel = s.level;
    }
    done();
  });
}
