/**
 * The server config file (YAML, `rolecast serve --config FILE`): merged over defaultConfig(); unknown keys
 * and wrong types are errors that name file:line:col and the key, like the profiles.
 */
import { readFile } from 'node:fs/promises';
import { LineCounter, parseDocument, isMap, isScalar, type Node } from 'yaml';
import { defaultConfig, type ServerConfig } from './config.js';
import { ProfileError, type ProfileIssue } from './errors.js';

interface Shape { [key: string]: 'string' | 'number' | 'boolean' | 'string[]' | Shape }

const SHAPE: Shape = {
  profilesDir: 'string', dataDir: 'string', imagesDir: 'string', address: 'string', baseUrl: 'string', logLevel: 'string', user: 'string',
  dhcp: {
    mode: 'string', port: 'number', proxyPort: 'number', bind: 'string', leaseTime: 'number', serveNonPxe: 'boolean',
    ipxeNoProxyWait: 'boolean', replyDelayMs: 'number', poolNetwork: 'string',
  },
  tftp: {
    enabled: 'boolean', port: 'number', bind: 'string', roots: 'string[]', maxBlksize: 'number', maxWindowsize: 'number',
    timeoutMs: 'number', retries: 'number', maxTimeoutS: 'number', maxStallMs: 'number', maxTransfers: 'number', maxTransfersPerClient: 'number', busyPollUs: 'number',
  },
  http: { enabled: 'boolean', host: 'string', port: 'number', token: 'string', tokens: { admin: 'string[]', read: 'string[]' }, sendfile: 'boolean', captureMaxBytes: 'number' },
  state: { backend: 'string', url: 'string' },
  ra: { enabled: 'boolean', interface: 'string', radvd: 'string' },
  bmc: { timeoutMs: 'number', attempts: 'number', maxConcurrent: 'number' },
  reload: { settleMs: 'number', maxDropShare: 'number' },
};

const ENUMS: Record<string, readonly string[]> = {
  'dhcp.mode': ['authoritative', 'proxy', 'off'],
  'state.backend': ['file', 'postgres'],
  logLevel: ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'],
};

function typeOk(kind: string, v: unknown): boolean {
  if (kind === 'string[]') return Array.isArray(v) && v.every((x) => typeof x === 'string');
  return typeof v === kind && !(kind === 'number' && !Number.isFinite(v));
}

/** Check a parsed value against SHAPE, collecting issues located via the YAML nodes. */
function check(node: Node | null | undefined, shape: Shape, path: string, out: ProfileIssue[], at: (n: Node | null | undefined) => { line: number; col: number }, file: string): void {
  if (!isMap(node)) {
    out.push({ file, ...at(node), path: path || '(root)', message: 'must be a mapping' });
    return;
  }
  for (const pair of node.items) {
    const key = isScalar(pair.key) ? String(pair.key.value) : '?';
    const p = path ? `${path}.${key}` : key;
    const kind = shape[key];
    const valueNode = pair.value as Node | null;
    if (kind === undefined) {
      out.push({ file, ...at(pair.key as Node), path: p, message: `unknown key "${key}" (expected one of: ${Object.keys(shape).join(', ')})` });
    } else if (typeof kind === 'object') {
      check(valueNode, kind, p, out, at, file);
    } else {
      const v = valueNode && 'toJSON' in valueNode ? (valueNode as { toJSON(): unknown }).toJSON() : undefined;
      if (!typeOk(kind, v)) out.push({ file, ...at(valueNode), path: p, message: `must be ${kind === 'string[]' ? 'a list of strings' : `a ${kind}`}` });
      else if (ENUMS[p] && !ENUMS[p].includes(v as string)) out.push({ file, ...at(valueNode), path: p, message: `must be one of: ${ENUMS[p].join(', ')}` });
    }
  }
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
  if (issues.length === 0 && doc.contents !== null) check(doc.contents as Node, SHAPE, '', issues, at, file);
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
