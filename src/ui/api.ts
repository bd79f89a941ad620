/**
 * The UI's only door to the server: JSON over the same API scripts use. The session cookie goes with
 * every request by itself (same origin); state changes carry the session's CSRF value in a header.
 */
const meta = (name: string): string => document.querySelector(`meta[name="${name}"]`)?.getAttribute('content') ?? '';

export const csrf = meta('rolecast-csrf');
export const level = meta('rolecast-level') === 'admin' ? 'admin' : 'read';
export const isAdmin = level === 'admin';

export class ApiError extends Error {
  constructor(readonly status: number, readonly code: string, message: string, readonly issues: string[] = []) {
    super(message);
  }
}

async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET') headers['x-rolecast-csrf'] = csrf;
  const res = await fetch(path, { method, headers, credentials: 'same-origin', ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  const text = await res.text();
  let data: unknown = undefined;
  try { data = text ? JSON.parse(text) : undefined; } catch { /* not JSON: keep the text for the message */ }
  if (!res.ok) {
    const e = (data ?? {}) as { code?: string; message?: string; issues?: string[] };
    if (res.status === 401) location.assign('/ui/login');
    throw new ApiError(res.status, e.code ?? `HTTP_${res.status}`, e.message ?? (text.slice(0, 200) || res.statusText), e.issues ?? []);
  }
  return data as T;
}

export const get = <T>(path: string): Promise<T> => call<T>('GET', path);
export const post = <T>(path: string, body: unknown): Promise<T> => call<T>('POST', path, body);
export const put = <T>(path: string, body: unknown): Promise<T> => call<T>('PUT', path, body);

let routes: Promise<Set<string>> | undefined;

/**
 * The API routes this server has, from its OpenAPI document, with path parameters blanked
 * ("/api/machines/{}/power"): sections whose routes are absent are hidden, not broken.
 */
export function availableRoutes(): Promise<Set<string>> {
  routes ??= get<{ paths?: Record<string, Record<string, unknown>> }>('/api/openapi.json').then((doc) => {
    const out = new Set<string>();
    for (const [p, ops] of Object.entries(doc.paths ?? {})) {
      for (const m of Object.keys(ops)) out.add(`${m.toUpperCase()} ${p.replace(/\{[^}]*\}/g, '{}')}`);
    }
    return out;
  }).catch(() => new Set<string>());
  return routes;
}

export const enc = encodeURIComponent;
