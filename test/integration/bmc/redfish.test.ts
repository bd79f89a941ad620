/**
 * rolecast's Redfish driver against the test emulator (test/helpers/redfish-emu.ts; Debian ships no
 * Redfish BMC), on 127.0.0.1, through the real CLI entry point: power operations, Debian's redfishtool
 * reading and changing the same BMC, sessions always deleted, 401, 503, a BMC that never answers, and
 * 50 BMCs (answering, slow, never answering, port closed) read by `power --all status` within one
 * timeout period, one honest row each.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryPower, RedfishEmu, type EmuOptions } from '../../helpers/redfish-emu.js';
import { fixtureHost, fixtureMac, writeFixtureProfiles } from '../../helpers/profiles.js';
import { commandExists, runAsync } from '../../helpers/netns.js';
import { rolecastHere } from '../cli/helpers.js';
import { sessionsClosing } from '../../../src/bmc/redfish.js';

interface Row { host: string; op: string; ok: boolean; state?: string; code?: string; error?: string; ms: number }

const dir = mkdtempSync(join(tmpdir(), 'rolecast-redfish-'));
const emus: RedfishEmu[] = [];
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(async () => { for (const e of emus.splice(0)) await e.close(); });

/** Profiles whose machines w001.. have Redfish BMCs on these ports (password secret "bmc" = "secret"). */
function profiles(name: string, ports: number[], user = 'admin'): string[] {
  const p = join(dir, name);
  writeFixtureProfiles(p, { machines: ports.length });
  const lines = ['machines:', ...ports.map((port, i) => `  - { host: ${fixtureHost(i)}, mac: ${fixtureMac(i)}, role: web, ip: 10.0.0.${i + 11}, bmc: { type: redfish, address: "127.0.0.1:${port}", user: ${user}, password: secret:bmc, scheme: http } }`)];
  writeFileSync(join(p, 'machines.yaml'), `${lines.join('\n')}\n`);
  writeFileSync(join(p, 'secrets.yaml'), 'bmc: secret\n');
  return ['--profiles', p, '--data', join(dir, `${name}-data`)];
}

async function emu(o: EmuOptions = {}): Promise<RedfishEmu> {
  const e = new RedfishEmu(o);
  await e.listen();
  emus.push(e);
  return e;
}

async function power(args: string[], where: string[]): Promise<{ code: number | null; rows: Row[]; stderr: string }> {
  const r = await rolecastHere(['power', ...args, ...where, '--json']);
  const parsed = JSON.parse(r.stdout || 'null') as Row | Row[] | null;
  return { code: r.code, rows: parsed === null ? [] : Array.isArray(parsed) ? parsed : [parsed], stderr: r.stderr };
}

/** A port on 127.0.0.1 nobody listens on (bound, then closed). */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe('Redfish driver against the emulator', () => {
  let where: string[] = [];
  let bmc: RedfishEmu;
  beforeAll(async () => {
    bmc = new RedfishEmu({ backend: new MemoryPower('Off') });
    await bmc.listen();
    where = profiles('one', [bmc.port]);
  });
  afterAll(() => bmc.close());

  it('status, on, pxe (Once + Pxe), cycle, off: each logs in with a session and deletes it', async () => {
    const s = await power(['w001', 'status'], where);
    expect(s.code).toBe(0);
    expect(s.rows[0]).toMatchObject({ ok: true, state: 'off' });
    expect((await power(['w001', 'on'], where)).rows[0]).toMatchObject({ ok: true });
    expect(await bmc.backend.state()).toBe('On');
    expect((await power(['w001', 'pxe'], where)).rows[0]).toMatchObject({ ok: true });
    expect(bmc.boot).toEqual({ BootSourceOverrideEnabled: 'Once', BootSourceOverrideTarget: 'Pxe' });
    expect((await power(['w001', 'cycle'], where)).rows[0]).toMatchObject({ ok: true });
    expect(bmc.resets).toEqual(['On', 'PowerCycle']);
    expect(bmc.boot.BootSourceOverrideEnabled).toBe('Disabled'); // the once was used by that boot
    expect((await power(['w001', 'off'], where)).rows[0]).toMatchObject({ ok: true });
    expect(await bmc.backend.state()).toBe('Off');
    expect(bmc.created).toBe(5);
    expect(bmc.deleted).toBe(5);
    expect(bmc.sessions.size).toBe(0);
  });

  it.runIf(commandExists('redfishtool'))('Debian\'s redfishtool and rolecast read and change the same BMC and agree', async () => {
    const rt = (...a: string[]) => runAsync('redfishtool', ['-r', `127.0.0.1:${bmc.port}`, '-u', 'admin', '-p', 'secret', '-S', 'Never', '-A', 'Session', ...a], 30_000);
    const stateBy = async () => {
      const r = await rt('Systems', '-F', 'get', '-P', 'PowerState');
      expect(r.code, r.stderr).toBe(0);
      return (JSON.parse(r.stdout) as { PowerState: string }).PowerState;
    };
    expect(await stateBy()).toBe('Off');
    expect((await power(['w001', 'on'], where)).rows[0]!.ok).toBe(true);
    expect(await stateBy()).toBe('On');
    const off = await rt('Systems', '-F', 'reset', 'ForceOff');
    expect(off.code, off.stderr).toBe(0);
    expect((await power(['w001', 'status'], where)).rows[0]).toMatchObject({ ok: true, state: 'off' });
    expect((await power(['w001', 'pxe'], where)).rows[0]!.ok).toBe(true);
    const boot = await rt('Systems', '-F', 'get', '-P', 'Boot');
    expect(JSON.parse(boot.stdout)).toMatchObject({ Boot: { BootSourceOverrideEnabled: 'Once', BootSourceOverrideTarget: 'Pxe' } });
  });

  it('a wrong password is "authentication refused", exit 3, no state, no session left', async () => {
    const bad = await emu({ password: 'other' });
    const r = await power(['w001', 'status'], profiles('auth', [bad.port]));
    expect(r.code).toBe(3);
    expect(r.rows[0]).toMatchObject({ ok: false, code: 'E_BMC_AUTH', error: `BMC 127.0.0.1:${bad.port}: authentication refused while logging in (HTTP 401)` });
    expect(r.rows[0]!.state).toBeUndefined();
    expect(bad.sessions.size).toBe(0);
  });

  it('503 once is retried within the deadline; 503 every time is E_BMC_BUSY', async () => {
    const once = await emu({ fail503: 1, backend: new MemoryPower('On') });
    const r1 = await power(['w001', 'status'], profiles('busy1', [once.port]));
    expect(r1.rows[0]).toMatchObject({ ok: true, state: 'on' });
    const always = await emu({ fail503: 1000 });
    const r2 = await power(['w001', 'on', '--timeout', '3'], profiles('busy', [always.port]));
    expect(r2.code).toBe(3);
    expect(r2.rows[0]).toMatchObject({ ok: false, code: 'E_BMC_BUSY' });
    expect(r2.rows[0]!.error).toMatch(/is busy \(HTTP 503\) while logging in: The service is temporarily unavailable/);
    expect(always.requests.length).toBe(2); // bounded: two attempts, not a hammering loop
  });

  it('a BMC that never answers fails within the timeout with "did not answer in 1 s"', async () => {
    const silent = await emu({ silent: true });
    const t0 = Date.now();
    const r = await power(['w001', 'status', '--timeout', '1'], profiles('silent', [silent.port]));
    const took = Date.now() - t0;
    expect(r.code).toBe(3);
    expect(r.rows[0]).toMatchObject({ ok: false, code: 'E_BMC_TIMEOUT', error: `BMC 127.0.0.1:${silent.port} did not answer in 1 s` });
    expect(took).toBeLessThan(2500);
  });

  it('the session is deleted also when the call times out after logging in', async () => {
    const stuck = await emu({ hang: /\/Systems/ });
    const r = await power(['w001', 'status', '--timeout', '1'], profiles('stuck', [stuck.port]));
    expect(r.rows[0]).toMatchObject({ ok: false, code: 'E_BMC_TIMEOUT' });
    await sessionsClosing();
    expect([stuck.created, stuck.deleted, stuck.sessions.size]).toEqual([1, 1, 0]);
  });

  it('a BMC without a SessionService gets HTTP Basic', async () => {
    const basic = await emu({ noSessions: true, backend: new MemoryPower('On') });
    const r = await power(['w001', 'status'], profiles('basic', [basic.port]));
    expect(r.rows[0]).toMatchObject({ ok: true, state: 'on' });
    expect(basic.created).toBe(0);
  });
});

describe('power --all status over 50 BMCs', () => {
  it('answering, slow, never answering and closed: one timeout period, an honest row each', async () => {
    const kinds: Array<'on' | 'off' | 'slow' | 'silent' | 'closed'> = [];
    const ports: number[] = [];
    for (let i = 0; i < 50; i++) {
      const kind = i % 10 === 3 ? 'silent' : i % 10 === 7 ? 'closed' : i % 5 === 1 ? 'slow' : i % 2 ? 'on' : 'off';
      kinds.push(kind);
      if (kind === 'closed') { ports.push(await closedPort()); continue; }
      const e = await emu({ backend: new MemoryPower(kind === 'on' ? 'On' : 'Off'), ...(kind === 'slow' ? { delayMs: 400 } : {}), ...(kind === 'silent' ? { silent: true } : {}) });
      ports.push(e.port);
    }
    const where = profiles('fifty', ports);
    const t0 = Date.now();
    const r = await power(['--all', 'status', '--timeout', '4'], where);
    const took = Date.now() - t0;
    expect(r.rows).toHaveLength(50);
    expect(r.code).toBe(3); // some BMCs failed
    r.rows.forEach((row, i) => {
      const kind = kinds[i]!;
      expect(row.host).toBe(fixtureHost(i));
      if (kind === 'silent') expect(row, row.host).toMatchObject({ ok: false, code: 'E_BMC_TIMEOUT' });
      else if (kind === 'closed') expect(row, row.host).toMatchObject({ ok: false, code: 'E_BMC_UNREACHABLE' });
      else expect(row, row.host).toMatchObject({ ok: true, state: kind === 'on' ? 'on' : 'off' });
      if (!row.ok) expect(row.state, row.host).toBeUndefined();
    });
    console.log(`power --all status, 50 BMCs (${kinds.filter((k) => k === 'silent').length} silent, ${kinds.filter((k) => k === 'closed').length} closed, ${kinds.filter((k) => k === 'slow').length} slow): ${took} ms with a 4 s timeout`);
    expect(took).toBeLessThan(4000 + 1500);
    for (const e of emus) if (!e.o.silent) expect(e.sessions.size, `port ${e.port}`).toBe(0);
  }, 30_000);
});
