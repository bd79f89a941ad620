/**
 * Route schemas compile on first use (src/http/lazy-validators.ts), without ajv's meta-schema check: here
 * every route's validators are compiled and each schema is checked against draft-07, so a broken schema
 * fails this test rather than the first request that needs it; and validation still answers 400 with our
 * error shape, coerces query values and refuses unknown body fields as fastify's default compiler did.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Ajv } from 'ajv';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../../src/http/app.js';
import { compilePending } from '../../../src/http/lazy-validators.js';
import { openFileState } from '../../../src/state/file/index.js';
import type { State } from '../../../src/state/types.js';
import { InventoryStore } from '../../../src/inventory/watch.js';
import { defaultConfig } from '../../../src/config.js';
import { silentLogger } from '../../../src/log.js';

const ROOT = resolve(import.meta.dirname, '../../..');
const dir = mkdtempSync(join(tmpdir(), 'rolecast-lazyval-'));
let app: FastifyInstance;
let inv: InventoryStore;
let state: State;

beforeAll(async () => {
  cpSync(join(ROOT, 'test/fixtures/profiles'), join(dir, 'profiles'), { recursive: true });
  const cfg = { ...defaultConfig(), profilesDir: join(dir, 'profiles'), dataDir: join(dir, 'data'), imagesDir: join(dir, 'images'), address: '10.0.0.1' };
  cfg.http = { ...cfg.http, token: 'tok' };
  inv = await InventoryStore.open(cfg.profilesDir, silentLogger());
  state = await openFileState(cfg.dataDir, cfg.profilesDir, silentLogger());
  app = await buildApp({ getInventory: () => inv.current(), config: cfg, logger: silentLogger(), state });
  await app.ready();
});
afterAll(async () => { await app.close(); await state.close(); inv.close(); rmSync(dir, { recursive: true, force: true }); });

it('validates with the schemas fastify compiled before, on first use', async () => {
  const bad = await app.inject('/boot/52:54:00:12:34:56.ipxe?arch=x86');
  expect(bad.statusCode).toBe(400);
  expect(bad.json()).toMatchObject({ code: expect.any(String) });
  // A query value is coerced to the schema's integer, as with fastify's default compiler.
  expect((await app.inject('/boot/52:54:00:12:34:56.ipxe?arch=7')).statusCode).not.toBe(400);
  const unknownField = await app.inject({ method: 'PUT', url: '/api/machines/web1/role', headers: { authorization: 'Bearer tok' }, payload: { role: 'web', colour: 'red' } });
  expect(unknownField.statusCode).toBe(400);
});

it('compiles every route schema, and each is valid draft-07', () => {
  const schemas = compilePending();
  expect(schemas.length).toBeGreaterThan(10);
  const meta = new Ajv({ strict: false });
  for (const s of schemas) expect(meta.validateSchema(s as object), JSON.stringify(meta.errors)).toBe(true);
  expect(compilePending()).toEqual([]);
});
