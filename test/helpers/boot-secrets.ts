/**
 * A machine's boot as the secret path sees it (issue 16), for tests that drive the app with inject():
 * its DHCP lease bound at its address, its script fetched from there (which mints the boot token), and
 * the secret bundle fetched with that token. inject() cannot choose a source port, so apps driven this
 * way run with secrets.requirePrivilegedPort off; test/integration/http/secret-path.test.ts checks the
 * port over real sockets.
 */
import { expect } from 'vitest';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { State } from '../../src/state/types.js';

export async function bindLease(state: State, mac: string, ip: string): Promise<void> {
  await state.leases.commit({ mac, ip, state: 'bound', expiresAt: new Date(Date.now() + 3600_000).toISOString() }, { reserved: true });
}

/** The token the machine's script carries (rolecast.token=), fetched from its own address. */
export async function scriptToken(app: FastifyInstance, mac: string, ip: string): Promise<string | undefined> {
  const r = await app.inject({ url: `/boot/${mac}.ipxe`, remoteAddress: ip });
  expect(r.statusCode).toBe(200);
  return /rolecast\.token=(\S+)/.exec(r.body)?.[1];
}

/** Lease, script, bundle: the tar the initramfs gets. */
export async function bootBundle(app: FastifyInstance, state: State, mac: string, ip: string): Promise<Buffer> {
  await bindLease(state, mac, ip);
  const token = await scriptToken(app, mac, ip);
  expect(token).toBeDefined();
  const r = await app.inject({ url: `/secrets/${mac}`, remoteAddress: ip, headers: { authorization: `Bearer ${token}` } });
  expect(r.statusCode, r.body).toBe(200);
  return r.rawPayload;
}

/**
 * A script goes out (and mints a token) only when the kernel and initrd it names are on disk: tests
 * that never boot a VM give the fixture profiles' two files placeholder bytes.
 */
export function placeholderBootImages(imagesDir: string): void {
  mkdirSync(join(imagesDir, 'build'), { recursive: true });
  for (const f of ['vmlinuz', 'initrd.img']) if (!existsSync(join(imagesDir, 'build', f))) writeFileSync(join(imagesDir, 'build', f), `placeholder ${f}\n`);
}
