/**
 * A minimal JSON-over-HTTP(S) client for Redfish on node:http/https: per-request certificate checking
 * (most BMCs ship self-signed certificates, which fetch cannot accept without a dispatcher from the
 * undici package), a hard abort on the call's signal, no keep-alive (BMCs limit connections), and
 * bodies capped so a broken BMC cannot fill memory.
 */
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';

export interface HttpAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  /** Parsed JSON body, or undefined when empty or not JSON. */
  json: unknown;
  text: string;
}

export interface HttpCall {
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  url: URL;
  headers?: Record<string, string>;
  body?: unknown;
  signal: AbortSignal;
  tlsVerify: boolean;
}

const MAX_BODY = 1 << 20;

/** Rejects with the socket error (code ECONNREFUSED, ...) or with an AbortError once `signal` fires. */
export function httpJson(c: HttpCall): Promise<HttpAnswer> {
  const payload = c.body === undefined ? undefined : Buffer.from(JSON.stringify(c.body));
  const headers: Record<string, string> = { accept: 'application/json', connection: 'close', ...c.headers };
  if (payload) { headers['content-type'] = 'application/json'; headers['content-length'] = String(payload.length); }
  const request = c.url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request(c.url, { method: c.method, headers, signal: c.signal, agent: false, rejectUnauthorized: c.tlsVerify }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (d: Buffer) => {
        size += d.length;
        if (size > MAX_BODY) { req.destroy(new Error(`answer larger than ${MAX_BODY} bytes`)); return; }
        chunks.push(d);
      });
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try { json = text ? JSON.parse(text) : undefined; } catch { json = undefined; }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, json, text });
      });
    });
    req.on('error', reject);
    req.end(payload);
  });
}
