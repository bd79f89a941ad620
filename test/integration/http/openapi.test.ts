/**
 * The OpenAPI document passes Redocly's lint with its recommended rules (the engine behind `redocly lint`,
 * @redocly/openapi-core) with no problem at all, declares the bearer scheme, says which routes need a token,
 * and gives response schemas (errors included).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { createConfig, lintFromString } from '@redocly/openapi-core';
import { buildApp } from '../../../src/http/app.js';
import { openFileState } from '../../../src/state/file/index.js';
import type { State } from '../../../src/state/types.js';
import { InventoryStore } from '../../../src/inventory/watch.js';
import { defaultConfig } from '../../../src/config.js';
import { silentLogger } from '../../../src/log.js';

const ROOT = resolve(import.meta.dirname, '../../..');
const dir = mkdtempSync(join(tmpdir(), 'rolecast-openapi-'));
let app: FastifyInstance;
let inv: InventoryStore;
let state: State;
type Op = { summary?: string; operationId?: string; security?: unknown[]; responses: Record<string, { content?: Record<string, { schema?: Record<string, unknown> }> }> };
let doc: { openapi: string; components: { securitySchemes: Record<string, unknown> }; paths: Record<string, Record<string, Op>> };

beforeAll(async () => {
  cpSync(join(ROOT, 'test/fixtures/profiles'), join(dir, 'profiles'), { recursive: true });
  const cfg = { ...defaultConfig(), profilesDir: join(dir, 'profiles'), dataDir: join(dir, 'data'), imagesDir: join(dir, 'images'), address: '10.0.0.1' };
  inv = await InventoryStore.open(cfg.profilesDir, silentLogger());
  state = await openFileState(cfg.dataDir, cfg.profilesDir, silentLogger());
  app = await buildApp({ getInventory: () => inv.current(), config: cfg, logger: silentLogger(), state });
  doc = (await app.inject('/api/openapi.json')).json();
});
afterAll(async () => { await app.close(); await state.close(); inv.close(); rmSync(dir, { recursive: true, force: true }); });

it('is clean under Redocly\'s recommended rules', async () => {
  const problems = await lintFromString({ source: JSON.stringify(doc), absoluteRef: 'openapi.json', config: await createConfig({ extends: ['recommended'] }) });
  expect(problems.map((p) => `${p.severity} ${p.ruleId}: ${p.message} at ${p.location[0]?.pointer ?? ''}`)).toEqual([]);
}, 60_000);

it('declares the bearer scheme and which operations need it', () => {
  expect(doc.components.securitySchemes.bearer).toMatchObject({ type: 'http', scheme: 'bearer' });
  expect(doc.paths['/api/machines']!.get!.security).toEqual([{ bearer: [] }]);
  expect(doc.paths['/api/machines/{host}/role']!.put!.security).toEqual([{ bearer: [] }]);
  expect(doc.paths['/api/events']!.get!.security).toEqual([{ bearer: [] }]);
  // Machines phone home and boot without a token.
  expect(doc.paths['/api/machines/{mac}/events']!.post!.security).toEqual([]);
  expect(doc.paths['/boot/{file}']!.get!.security).toEqual([]);
});

it('every operation has a summary, an operationId, a 2xx and an error response with the error shape', () => {
  const ids = new Set<string>();
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      expect(op.summary, `${method} ${path}`).toBeTruthy();
      expect(ids.has(op.operationId!), `${method} ${path} operationId unique`).toBe(false);
      ids.add(op.operationId!);
      expect(Object.keys(op.responses).some((c) => /^2/.test(c)), `${method} ${path} 2xx`).toBe(true);
      expect(op.responses['4XX']?.content?.['application/json']?.schema).toEqual({ $ref: '#/components/schemas/Error' });
    }
  }
  const health = doc.paths['/healthz']!.get!.responses['200']!.content!['application/json']!.schema as { properties: Record<string, { enum?: string[] }> };
  expect(health.properties.status!.enum).toEqual(['ok', 'degraded']);
  expect(doc.paths['/loaders/{path}']).toBeDefined();
});
