/**
 * The OpenAPI document (@fastify/swagger, served at /api/openapi.json): route schemas give the parameters and
 * bodies; this module adds what an API client needs and `redocly lint` checks — a summary and operationId per
 * operation, the bearer scheme and which token level each route needs (read from its requireToken
 * preHandler), the error shape for 4xx/5xx, and response schemas for the routes clients script against.
 * Documentation only: response schemas here never change how a route serialises.
 */
import type { FastifyDynamicSwaggerOptions } from '@fastify/swagger';
import { tokenLevelOf } from './auth.js';

const error = { $ref: '#/components/schemas/Error' };
const json = (schema: object, description: string) => ({ description, content: { 'application/json': { schema } } });
const text = (type: string, description: string) => ({ description, content: { [type]: { schema: { type: 'string' } } } });
const binary = (description: string) => ({ description, content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } } });

const bootEvent = {
  type: 'object', required: ['mac', 'stage', 'at'],
  properties: { mac: { type: 'string' }, stage: { type: 'string' }, at: { type: 'string', format: 'date-time' }, host: { type: 'string' }, detail: { type: 'string' }, address: { type: 'string' } },
};
const missingImage = { type: 'object', properties: { name: { type: 'string' }, file: { type: 'string' }, problem: { type: 'string', enum: ['missing', 'not a file', 'not readable'] } } };
const machine = { type: 'object', additionalProperties: true, properties: { host: { type: 'string' }, macs: { type: 'array', items: { type: 'string' } }, role: { type: 'string' }, ip: { type: 'string' } } };

const machineRow = { ...machine, properties: { ...machine.properties, hash: { type: ['string', 'null'] }, lastServedHash: { type: ['string', 'null'] }, changed: { type: ['boolean', 'null'] }, hashPending: { type: 'boolean', description: 'present (true) only while the content hashes are still coming: hash and changed are then unknown, not null' } } };

/** Summary and 2xx responses by "METHOD /path" (fastify's URL form). Routes not listed get a generic entry. */
const DOCS: Record<string, { summary: string; ok?: Record<string, object> }> = {
  'GET /healthz': { summary: 'Health: inventory version, machines, missing images ("degraded"), sendfile', ok: { 200: json({ type: 'object', properties: { ok: { type: 'boolean' }, status: { type: 'string', enum: ['ok', 'degraded'] }, version: { type: 'string' }, machines: { type: 'integer' }, missingImages: { type: 'array', items: missingImage }, sendfile: { type: 'boolean' } } }, 'Serving; "degraded" lists images the inventory names but the server lacks') } },
  'GET /boot.ipxe': { summary: 'iPXE chain script: fetch this machine\'s own script by MAC', ok: { 200: text('text/plain', 'iPXE script') } },
  'GET /boot/:file': { summary: 'A machine\'s iPXE boot script (<mac>.ipxe)', ok: { 200: text('text/plain', 'iPXE script (or one explaining which images are missing)') } },
  'GET /boot/:mac/:cfg': { summary: 'A machine\'s GRUB or PXELINUX config over HTTP', ok: { 200: text('text/plain', 'grub.cfg or pxelinux config') } },
  'GET /images/:name': { summary: 'A kernel, initrd or image file (Range, If-Range, ETag)', ok: { 200: binary('The file'), 206: binary('A byte range'), 304: { description: 'Not modified' } } },
  'GET /loaders/*': { summary: 'A boot loader or rendered loader config (UEFI HTTP boot)', ok: { 200: binary('The loader or config') } },
  'GET /rootfs/:file': { summary: 'A machine\'s root filesystem: role base image plus its generated files (.tar, .tar.gz, .tar.zst)', ok: { 200: binary('tar stream'), 206: binary('A byte range of the .tar') } },
  'GET /files/:mac/*': { summary: 'One generated file of a machine (secret files only to the machine itself)', ok: { 200: binary('File content') } },
  'GET /api/machines': { summary: 'Every machine: role, addresses, last stage, whether its next boot changes', ok: { 200: json({ type: 'array', items: machineRow }, 'Machines. Right after a start, while the content hashes are still being worked out (header x-rolecast-hashes: pending), each row has hash and changed null and hashPending true; ask again for them') } },
  'GET /api/machines/:mac/events': { summary: 'A machine\'s boot timeline', ok: { 200: json({ type: 'array', items: bootEvent }, 'Boot events, oldest first') } },
  'POST /api/machines/:mac/events': { summary: 'Phone-home: the initramfs or booted system reports a stage', ok: { 202: json({ type: 'object', properties: { ok: { type: 'boolean' } } }, 'Recorded') } },
  'GET /api/events': { summary: 'Server-Sent Events: every boot event live; ids, heartbeat, Last-Event-ID resumption', ok: { 200: text('text/event-stream', 'event: <stage> / data: <BootEvent JSON> / id: <epoch>-<seq>; `event: reset` when a resume is impossible') } },
  'GET /api/machines/:host': { summary: 'One machine: role, addresses, last boot event, lease', ok: { 200: json(machine, 'The machine') } },
  'PUT /api/machines/:host/role': { summary: 'Change a machine\'s role (edits machines.yaml; validated first)', ok: { 200: json({ type: 'object', properties: { host: { type: 'string' }, role: { type: 'string' } } }, 'Changed') } },
  'GET /api/machines/:host/console': { summary: 'The console log of the machine\'s last recorded boot (Serial over LAN, IPMI BMCs): screen text, or the raw bytes with ?raw=1', ok: { 200: json({ type: 'object', properties: { host: { type: 'string' }, recording: { type: 'boolean' }, updated: { type: 'string', format: 'date-time' }, bytes: { type: 'integer' }, text: { type: 'string' } } }, 'The log (bounded: the newest bytes are kept)') } },
  'GET /api/leases': { summary: 'DHCP leases', ok: { 200: json({ type: 'array', items: { type: 'object', properties: { mac: { type: 'string' }, ip: { type: 'string' }, state: { type: 'string' }, expiresAt: { type: 'string', format: 'date-time' }, host: { type: 'string' } } } }, 'Leases') } },
};

function operationId(method: string, url: string): string {
  const words = url.split('/').filter(Boolean).map((w) => w.replace(/^:/, 'by-').replace(/\*/g, 'path').replace(/[^A-Za-z0-9]+/g, '-'));
  return [method.toLowerCase(), ...words].join('-').replace(/-+(.)/g, (_, c: string) => c.toUpperCase());
}

function levelOf(preHandler: unknown): string | undefined {
  for (const h of [preHandler].flat()) if (h && typeof h === 'function' && tokenLevelOf.has(h)) return tokenLevelOf.get(h);
  return undefined;
}

export const openapiOptions = (version: string): FastifyDynamicSwaggerOptions => ({
  openapi: {
    info: { title: 'rolecast', version, description: 'Boot scripts, images, per-machine rootfs, boot events and inventory API', license: { name: 'MIT', url: 'https://spdx.org/licenses/MIT.html' } },
    servers: [{ url: '/', description: 'this rolecast server' }],
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'Authorization: Bearer <token> — a read token (http.tokens.read) or an admin token (http.tokens.admin, http.token); the web UI\'s session cookie counts as its level' } },
      schemas: { Error: { type: 'object', required: ['code', 'message'], properties: { code: { type: 'string', description: 'stable error code (src/errors.ts)' }, message: { type: 'string' }, issues: { type: 'array', items: { type: 'string' }, description: 'file:line:col: path: message, for refused profile edits' } } } },
    },
  },
  transform: ({ schema, url, route }) => {
    const method = [route.method].flat()[0] ?? 'GET';
    const doc = DOCS[`${method} ${url}`];
    const level = levelOf(route.preHandler);
    const given = { ...(schema ?? {}) } as Record<string, unknown>;
    const params = given.params as { properties?: Record<string, unknown>; required?: string[] } | undefined;
    if (params?.properties?.['*']) {
      // fastify's wildcard `*` is not an OpenAPI path template: call it {path}.
      const { '*': wild, ...rest } = params.properties;
      given.params = { ...params, properties: { ...rest, path: wild }, required: (params.required ?? []).map((r) => (r === '*' ? 'path' : r)) };
    }
    const out: Record<string, unknown> = {
      ...given,
      summary: given.summary ?? doc?.summary ?? `${method} ${url}`,
      operationId: operationId(method, url),
      security: level ? [{ bearer: [] }] : [],
      ...(level ? { description: `Needs a ${level} token.` } : {}),
      response: { ...(doc?.ok ?? { 200: { description: 'OK', content: { 'application/json': { schema: { type: 'object', additionalProperties: true } } } } }), '4XX': { description: 'Refused: bad request, token missing or too weak, unknown machine', content: { 'application/json': { schema: error } } }, '5XX': { description: 'Failed on our side', content: { 'application/json': { schema: error } } }, ...(given.response as object | undefined) },
    };
    return { schema: out as never, url: url.replace(/\*/g, ':path') };
  },
});
