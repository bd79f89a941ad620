/**
 * The server config file (YAML, `rolecast serve --config FILE`): merged over defaultConfig(). SHAPE is
 * compiled to a JSON Schema checked by ajv; its errors are located on the YAML nodes, so unknown keys and
 * wrong types name file:line:col and the key, like the profiles.
 */
import { readFile } from 'node:fs/promises';
import { Ajv } from 'ajv';
import { LineCounter, parseDocument, isMap, isScalar, type Document, type Node } from 'yaml';
import { defaultConfig, type ServerConfig } from './config.js';
import { ProfileError, type ProfileIssue } from './errors.js';

interface Shape { [key: string]: 'string' | 'number' | 'integer' | 'boolean' | 'string[]' | Shape }

const SHAPE: Shape = {
  profilesDir: 'string', dataDir: 'string', imagesDir: 'string', address: 'string', baseUrl: 'string', logLevel: 'string', user: 'string',
  dhcp: {
    mode: 'string', port: 'number', proxyPort: 'number', bind: 'string', leaseTime: 'number', serveNonPxe: 'boolean',
    ipxeNoProxyWait: 'boolean', replyDelayMs: 'number', unicastReplies: 'string', batchIo: 'string', thread: 'string', threadNice: 'number', poolNetwork: 'string',
  },
  tftp: {
    enabled: 'boolean', port: 'number', bind: 'string', roots: 'string[]', maxBlksize: 'number', maxWindowsize: 'number',
    timeoutMs: 'number', retries: 'number', maxTimeoutS: 'number', maxStallMs: 'number', maxTransfers: 'number', maxTransfersPerClient: 'number', busyPollUs: 'number',
  },
  http: { enabled: 'boolean', host: 'string', port: 'number', token: 'string', tokens: { admin: 'string[]', read: 'string[]' }, sendfile: 'boolean', rtoMaxMs: 'number', bulkSlots: 'integer', bulkWhen: 'string', bulkHoldMs: 'number', captureMaxBytes: 'number' },
  state: { backend: 'string', url: 'string' },
  ra: { enabled: 'boolean', interface: 'string', radvd: 'string' },
  bmc: { timeoutMs: 'number', attempts: 'number', maxConcurrent: 'number', console: { record: 'string', timeoutMs: 'number', lines: 'number', maxBytes: 'number', maxSessions: 'number', settleMs: 'number' } },
  reload: { settleMs: 'number', maxDropShare: 'number' },
  secrets: { windowS: 'number', requirePrivilegedPort: 'boolean' },
};

const ENUMS: Record<string, readonly string[]> = {
  'dhcp.mode': ['authoritative', 'proxy', 'off'],
  'dhcp.unicastReplies': ['auto', 'off'],
  'dhcp.batchIo': ['auto', 'off'],
  'dhcp.thread': ['auto', 'off'],
  'http.bulkWhen': ['pressure', 'always'],
  'state.backend': ['file', 'postgres'],
  'bmc.console.record': ['boot', 'power', 'off'],
  logLevel: ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'],
};

/** Numbers with bounds (inclusive), and how the error says them. */
const RANGES: Record<string, { minimum: number; maximum: number }> = {
  'http.rtoMaxMs': { minimum: 1000, maximum: 120_000 },
  'http.bulkSlots': { minimum: 0, maximum: 65_536 },
  'http.bulkHoldMs': { minimum: 100, maximum: 3_600_000 },
};

type Kind = Shape[string];

/** The JSON Schema (draft-07, for ajv) of SHAPE and ENUMS: unknown keys are refused at every level. */
function schemaOf(kind: Kind, path: string): Record<string, unknown> {
  if (typeof kind === 'object') {
    return { type: 'object', additionalProperties: false, properties: Object.fromEntries(Object.entries(kind).map(([k, v]) => [k, schemaOf(v, path ? `${path}.${k}` : k)])) };
  }
  if (kind === 'string[]') return { type: 'array', items: { type: 'string' } };
  const base: Record<string, unknown> = { type: kind };
  if (ENUMS[path]) base.enum = ENUMS[path];
  if (RANGES[path]) Object.assign(base, RANGES[path]);
  return base;
}

/** The config file's JSON Schema (exported for the test that checks it against ajv's meta-schema). */
export const CONFIG_SCHEMA = schemaOf(SHAPE, '');
// validateSchema off: the schema is generated above, not written by a user, and checking it against the
// draft-07 meta-schema compiled that meta-schema first — ~80 ms of every start (issue 15: serve <= 2 s).
const ajv = new Ajv({ allErrors: true, strict: true, validateSchema: false });
const validateConfig = ajv.compile(CONFIG_SCHEMA);

function shapeAt(path: string[]): Kind | undefined {
  let k: Kind | undefined = SHAPE;
  for (const p of path) k = typeof k === 'object' ? k[p] : undefined;
  return k;
}

const KIND_TEXT: Record<string, string> = { 'string[]': 'a list of strings', string: 'a string', number: 'a number', integer: 'a whole number', boolean: 'a boolean' };

/** ajv's errors as profile-style issues located on the YAML nodes; one per offending key or value. */
function ajvIssues(doc: Document.Parsed, file: string, at: (n: Node | null | undefined) => { line: number; col: number }): ProfileIssue[] {
  if (validateConfig(doc.toJSON() ?? {})) return [];
  const seen = new Set<string>();
  const out: Array<ProfileIssue & { off: number }> = [];
  for (const e of validateConfig.errors ?? []) {
    const parts = e.instancePath.split('/').slice(1).map((x) => x.replace(/~1/g, '/').replace(/~0/g, '~'));
    // A bad list element is reported once, on the list, as the list's type.
    const keyPath = parts.filter((_, i) => !(shapeAt(parts.slice(0, i)) === 'string[]'));
    const kind = shapeAt(keyPath);
    let node = doc.getIn(keyPath, true) as Node | undefined;
    let path = keyPath.join('.') || '(root)';
    let message: string;
    if (e.keyword === 'additionalProperties') {
      const key = (e.params as { additionalProperty: string }).additionalProperty;
      const parent = doc.getIn(keyPath, true);
      node = isMap(parent) ? (parent.items.find((p) => isScalar(p.key) && String(p.key.value) === key)?.key as Node | undefined) : undefined;
      path = [...keyPath, key].join('.');
      message = `unknown key "${key}" (expected one of: ${Object.keys(typeof kind === 'object' ? kind : {}).join(', ')})`;
    } else if (e.keyword === 'enum') {
      message = `must be one of: ${(e.params as { allowedValues: string[] }).allowedValues.join(', ')}`;
    } else if ((e.keyword === 'minimum' || e.keyword === 'maximum') && RANGES[path]) {
      const r = RANGES[path]!;
      message = `must be ${kind === 'integer' ? 'a whole number' : 'a number'} from ${r.minimum} to ${r.maximum}`;
    } else {
      message = typeof kind === 'object' ? 'must be a mapping' : `must be ${KIND_TEXT[kind ?? ''] ?? e.message ?? 'valid'}`;
    }
    if (seen.has(`${path} ${message}`)) continue;
    seen.add(`${path} ${message}`);
    out.push({ file, ...at(node), path, message, off: node?.range?.[0] ?? 0 });
  }
  return out.sort((a, b) => a.off - b.off).map(({ off: _off, ...i }) => i);
}

function merge<T>(base: T, over: unknown): T {
  if (typeof over !== 'object' || over === null || Array.isArray(over)) return over as T;
  const out: Record<string, unknown> = { ...(base as Record<string, unknown>) };
  for (const [k, v] of Object.entries(over)) out[k] = merge(out[k], v);
  return out as T;
}

export interface ParsedConfig {
  cfg: ServerConfig;
  /** Exactly what the file set, before defaults: callers tell "unset" from "set to the default". */
  raw: Partial<Record<keyof ServerConfig, unknown>> & { http?: Record<string, unknown> };
}

export function parseConfig(text: string, file: string): ParsedConfig {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, version: '1.2' });
  const at = (n: Node | null | undefined) => {
    const pos = lc.linePos(n?.range?.[0] ?? 0);
    return { line: pos.line, col: pos.col };
  };
  const issues: ProfileIssue[] = doc.errors.map((e) => ({ file, line: e.linePos?.[0]?.line ?? 1, col: e.linePos?.[0]?.col ?? 1, path: '(yaml)', message: e.message.split('\n')[0] ?? e.message }));
  if (issues.length === 0 && doc.contents !== null) issues.push(...ajvIssues(doc, file, at));
  if (issues.length === 0 && isMap(doc.contents)) {
    // postgres needs its URL; said here, with the position, rather than at the first query.
    const state = doc.contents.get('state', true);
    if (isMap(state) && state.get('backend') === 'postgres' && typeof state.get('url') !== 'string') {
      issues.push({ file, ...at(state as Node), path: 'state.url', message: 'backend postgres needs url: postgres://user:password@host:port/database' });
    }
  }
  if (issues.length) throw new ProfileError(issues);
  const raw = (doc.toJSON() ?? {}) as ParsedConfig['raw'];
  return { cfg: merge(defaultConfig(), raw), raw };
}

export async function loadConfig(file: string): Promise<ParsedConfig> {
  return parseConfig(await readFile(file, 'utf8'), file);
}
