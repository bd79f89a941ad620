/**
 * What an operator sees when the server cannot do everything: images the inventory names but the server
 * lacks (warned at start, /healthz degraded with the list, the machine told why instead of a kernel 404
 * loop), and listeners that cannot bind (cause and fix, the port's holder by PID; nothing left listening).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createTcp, type Server } from 'node:net';
import { createSocket } from 'node:dgram';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { defaultConfig, type ServerConfig } from '../../../src/config.js';
import { startServer } from '../../../src/main.js';
import { createLogger } from '../../../src/log.js';
import { RolecastError } from '../../../src/errors.js';
import { placeholderImages } from '../../helpers/images.js';

const ROOT = resolve(import.meta.dirname, '../../..');
const dir = mkdtempSync(join(tmpdir(), 'rolecast-startup-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
cpSync(join(ROOT, 'test/fixtures/profiles'), join(dir, 'profiles'), { recursive: true });

function config(over: Partial<ServerConfig> = {}): ServerConfig {
  const base = defaultConfig();
  return {
    ...base, profilesDir: join(dir, 'profiles'), dataDir: join(dir, 'data'), imagesDir: join(dir, 'images'), address: '127.0.0.1',
    http: { ...base.http, host: '127.0.0.1', port: 0, tokens: { read: ['r'.repeat(32)] } }, tftp: { ...base.tftp, enabled: false }, dhcp: { ...base.dhcp, mode: 'off' }, ...over,
  };
}

function capture(): { logger: ReturnType<typeof createLogger>; lines: () => Array<Record<string, unknown>> } {
  const chunks: string[] = [];
  const sink = new Writable({ write(c: Buffer, _e, cb) { chunks.push(c.toString()); cb(); } });
  return { logger: createLogger('info', sink), lines: () => chunks.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) };
}

describe('missing images', () => {
  it('are listed at start, make /healthz degraded, and a machine that needs one gets a failure event and an explaining script', async () => {
    const log = capture();
    const running = await startServer(config(), log.logger);
    try {
      const warn = log.lines().find((l) => /image\(s\) missing/.test(String(l.msg)));
      expect(warn, 'startup warning').toBeDefined();
      const names = (warn!.missing as Array<{ name: string; file: string; problem: string }>).map((m) => m.name);
      expect(names).toEqual(expect.arrayContaining(['kernel', 'initrd', 'web-root', 'memtest-bios']));
      expect(warn!.fix).toMatch(/rolecast images build all/);

      const base = `http://127.0.0.1:${running.httpPort}`;
      const health = await (await fetch(`${base}/healthz`)).json() as { status: string; missingImages: Array<{ name: string; file: string; problem: string }> };
      expect(health.status).toBe('degraded');
      expect(health.missingImages.find((m) => m.name === 'kernel')).toEqual({ name: 'kernel', file: join(dir, 'images/build/vmlinuz'), problem: 'missing' });

      const script = await (await fetch(`${base}/boot/52:54:00:00:02:01.ipxe`)).text();
      expect(script).toMatch(/^#!ipxe\n/);
      expect(script).toMatch(/echo rolecast: cannot boot w101 as web: missing on the server:/);
      expect(script).toContain(`kernel: ${join(dir, 'images/build/vmlinuz')} (missing)`);
      expect(script).toMatch(/fix: rolecast images build all/);
      expect(script).not.toMatch(/^kernel /m); // no fetch that would 404
      expect(script).toMatch(/sleep 60\nchain --replace .*\/boot\/52:54:00:00:02:01\.ipxe/);
      const failed = log.lines().find((l) => l.event === 'failed' && l.mac === '52:54:00:00:02:01');
      expect(failed?.detail).toMatch(/cannot boot web: missing .*kernel: .*vmlinuz \(missing\)/);

      // Built meanwhile: once the check's short cache expires, the machine gets its real script.
      await placeholderImages(join(dir, 'profiles'), join(dir, 'images'));
      await new Promise((r) => setTimeout(r, 2100));
      expect(await (await fetch(`${base}/boot/52:54:00:00:02:01.ipxe`)).text()).toMatch(/^kernel .*\/images\/kernel /m);
      expect(((await (await fetch(`${base}/healthz`)).json()) as { status: string }).status).toBe('ok');
    } finally {
      await running.close();
      rmSync(join(dir, 'images'), { recursive: true, force: true });
    }
  });
});

describe('listeners that cannot bind', () => {
  it('a TCP port in use names its holder (this process) and the fix', async () => {
    const holder: Server = createTcp();
    await new Promise<void>((r) => holder.listen(0, '127.0.0.1', r));
    const port = (holder.address() as { port: number }).port;
    try {
      const cfg = config();
      cfg.http.port = port;
      const err = await startServer(cfg, capture().logger).then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(RolecastError);
      expect((err as RolecastError).code).toBe('E_PORT_IN_USE');
      expect((err as Error).message).toBe(`HTTP: TCP 127.0.0.1:${port} is in use by PID ${process.pid} (${readComm()}): stop it, or give rolecast another port (--http-port or http.port in the config)`);
    } finally {
      holder.close();
    }
  });

  it('when TFTP cannot bind, the HTTP listener already started is closed again (nothing half-started)', async () => {
    const udp = createSocket('udp4');
    await new Promise<void>((r) => udp.bind(0, '127.0.0.1', r));
    const busy = udp.address().port;
    // Find a free TCP port for HTTP, then release it for rolecast.
    const probe = createTcp();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const httpPort = (probe.address() as { port: number }).port;
    await new Promise<void>((r) => probe.close(() => r()));
    try {
      const cfg = config();
      cfg.http.port = httpPort;
      cfg.tftp = { ...cfg.tftp, enabled: true, bind: '127.0.0.1', port: busy };
      const err = await startServer(cfg, capture().logger).then(() => undefined, (e: unknown) => e);
      expect((err as RolecastError).code).toBe('E_PORT_IN_USE');
      expect((err as Error).message).toMatch(new RegExp(`^TFTP: UDP 127\\.0\\.0\\.1:${busy} is in use by PID ${process.pid} `));
      const again = createTcp();
      await new Promise<void>((res, rej) => { again.once('error', rej); again.listen(httpPort, '127.0.0.1', res); });
      again.close();
    } finally {
      udp.close();
    }
  });

  it('a missing profiles directory and a missing config file are named with the fix (CLI, exit 1)', async () => {
    const { rolecast } = await import('../cli/helpers.js');
    const r = rolecast(['serve', '--profiles', join(dir, 'nope'), '--data', join(dir, 'data')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`profiles directory ${join(dir, 'nope')} does not exist: pass --profiles DIR`);
    writeFileSync(join(dir, 'x'), '');
    const c = rolecast(['serve', '--config', join(dir, 'nope.yaml')]);
    expect(c.code).toBe(1);
    expect(c.stderr).toContain(`config file ${join(dir, 'nope.yaml')} does not exist`);
  });
});

function readComm(): string {
  // The name /proc shows for this process (node, or vitest's worker name).
  return readFileSync(`/proc/${process.pid}/comm`, 'utf8').trim();
}
