/**
 * API tokens, two levels. The whole API of this file:
 *
 *   const tokens = tokensFrom(config.http);               // once, at app build
 *   app.get('/api/x', { preHandler: requireToken(tokens, 'read') }, handler);
 *   app.put('/api/y', { preHandler: requireToken(tokens, 'admin') }, handler);
 *   tokenLevel(tokens, req.headers.authorization)         // 'admin' | 'read' | undefined, for custom checks
 *
 * Config: `http.tokens: { admin: [..], read: [..] }`; the older single `http.token` counts as one more
 * admin token. An admin token passes every check; a read token passes only 'read' checks.
 * Clients send `Authorization: Bearer <token>`.
 *
 * One error shape (the API's `{ code, message }`):
 *   401 E_UNAUTHORISED  no or unknown token (with `WWW-Authenticate: Bearer`)
 *   403 E_FORBIDDEN     a valid read token on an admin route
 *   403 E_NO_TOKEN      no token of the needed level is configured, so nobody can pass (the route is off)
 *
 * Machines' own boot routes (/boot, /images, /rootfs, /files, /loaders) take no API token: firmware
 * cannot send one. Their secrets are guarded by address, boot window and per-boot token instead.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest, preHandlerAsyncHookHandler } from 'fastify';
import type { HttpConfig } from '../config.js';

export type TokenLevel = 'read' | 'admin';

declare module 'fastify' {
  interface FastifyRequest {
    /** The level of a valid web UI session on this request (set by src/http/ui/session.ts), if any. */
    sessionLevel?: TokenLevel;
  }
}

export interface TokenSet {
  readonly admin: readonly Buffer[];
  readonly read: readonly Buffer[];
}

/** Tokens are compared as SHA-256 digests: equal lengths for timingSafeEqual, whatever was sent. */
const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

export function tokensFrom(http: Pick<HttpConfig, 'token' | 'tokens'>): TokenSet {
  const admin = [...(http.tokens?.admin ?? []), ...(http.token ? [http.token] : [])].filter((t) => t.length > 0);
  const read = (http.tokens?.read ?? []).filter((t) => t.length > 0);
  return Object.freeze({ admin: admin.map(digest), read: read.map(digest) });
}

/** Does any of these digests equal `got`? Every one is compared, so timing says nothing about which. */
function anyEqual(list: readonly Buffer[], got: Buffer): boolean {
  let hit = false;
  for (const t of list) hit = timingSafeEqual(t, got) || hit;
  return hit;
}

/** The level a request's Authorization header carries, or undefined (missing, malformed or unknown). */
export function tokenLevel(tokens: TokenSet, authorization: string | undefined): TokenLevel | undefined {
  const sent = /^Bearer +(\S+) *$/i.exec(authorization ?? '')?.[1];
  if (!sent) return undefined;
  const got = digest(sent);
  const admin = anyEqual(tokens.admin, got);
  const read = anyEqual(tokens.read, got);
  return admin ? 'admin' : read ? 'read' : undefined;
}

export interface AuthFailure { status: 401 | 403; code: 'E_UNAUTHORISED' | 'E_FORBIDDEN' | 'E_NO_TOKEN'; message: string }

/** Why this request may not pass a check for `need`, or undefined when it may. Pure, for tests and reuse. */
export function authFailure(tokens: TokenSet, need: TokenLevel, authorization: string | undefined, session?: TokenLevel): AuthFailure | undefined {
  const configured = need === 'admin' ? tokens.admin.length : tokens.admin.length + tokens.read.length;
  if (configured === 0) {
    return { status: 403, code: 'E_NO_TOKEN', message: need === 'admin'
      ? 'this route is off: set http.tokens.admin (or http.token) in the server config'
      : 'this route is off: set http.tokens.read or http.tokens.admin in the server config' };
  }
  // A bearer token wins; else the web UI's session (src/http/ui/session.ts), which only exists for a
  // request whose cookie and, on a POST/PUT/DELETE, CSRF header both checked out.
  const level = tokenLevel(tokens, authorization) ?? session;
  if (!level) return { status: 401, code: 'E_UNAUTHORISED', message: `send Authorization: Bearer <${need} token>` };
  if (need === 'admin' && level !== 'admin') return { status: 403, code: 'E_FORBIDDEN', message: 'this route needs an admin token; a read token was sent' };
  return undefined;
}

/** Send an auth failure in the API's error shape. */
export function sendAuthFailure(reply: FastifyReply, f: AuthFailure): FastifyReply {
  if (f.status === 401) reply.header('www-authenticate', 'Bearer realm="rolecast"');
  return reply.code(f.status).type('application/json').send({ code: f.code, message: f.message });
}

/** A fastify preHandler that lets a request through only with a token of at least `need`. */
/** The level each requireToken handler asks for: the OpenAPI document states it per route (src/http/openapi.ts). */
export const tokenLevelOf = new WeakMap<object, TokenLevel>();

export function requireToken(tokens: TokenSet, need: TokenLevel): preHandlerAsyncHookHandler {
  const handler = async (req: FastifyRequest, reply: FastifyReply) => {
    const f = authFailure(tokens, need, req.headers.authorization, req.sessionLevel);
    if (!f) return;
    req.log.info({ url: req.url, code: f.code }, 'API request refused');
    // An async hook that replies must return the reply (fastify's hooks contract).
    return sendAuthFailure(reply, f);
  };
  tokenLevelOf.set(handler, need);
  return handler;
}
