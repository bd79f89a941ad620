/**
 * Reloads run on a worker thread: the snapshot it hands over (in slices) is the one loadInventory builds
 * on the main thread — same content, same indexes, frozen — and a broken or unreadable profile set gives
 * the same errors. Real files in a temp dir, a real worker thread.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { buildInventory, loadInventory } from '../../../src/inventory/index.js';
import { readSources } from '../../../src/inventory/load.js';
import { buildInventoryOffThread, LOADER_NICE, loadInventoryOffThread, startOffThreadLoad } from '../../../src/inventory/offthread.js';
import { filesHashOf, machineContent, machineContentHashOf, seedFilesHashes } from '../../../src/boot/content.js';
import { planBoot, type BootTargetPlan } from '../../../src/boot/plan.js';
import { ProfileError } from '../../../src/errors.js';
import type { Inventory } from '../../../src/inventory/types.js';

const PROFILES = resolve(import.meta.dirname, '../../fixtures/profiles');
const dirs: string[] = [];
afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

function copy(machines?: (text: string) => string): string {
  const d = mkdtempSync(join(tmpdir(), 'rolecast-offthread-'));
  dirs.push(d);
  cpSync(PROFILES, d, { recursive: true });
  if (machines) writeFileSync(join(d, 'machines.yaml'), machines(readFileSync(join(d, 'machines.yaml'), 'utf8')));
  return d;
}

/** Many machines, so the hand-over takes several slices. */
function many(n: number) {
  return (text: string) => {
    const hex = (x: number) => x.toString(16).padStart(2, '0');
    const extra = Array.from({ length: n }, (_, i) => `  - { host: x${i}, mac: [52:54:01:00:${hex(i >> 8)}:${hex(i & 255)}, 52:54:02:00:${hex(i >> 8)}:${hex(i & 255)}], role: web, ip: 10.0.0.${150 + (i % 50)}, sites: [SiteA] }`);
    return `${text}${extra.join('\n')}\n`;
  };
}

const view = (inv: Inventory) => ({ ...inv, byMac: [...inv.byMac], byHost: [...inv.byHost], byIp: [...inv.byIp] });

describe('profile loading on a worker thread', () => {
  it('builds the snapshot loadInventory builds, frozen, in slices', async () => {
    const dir = copy();
    const [here, there] = [await loadInventory(dir), await loadInventoryOffThread(dir, 3)];
    expect(view(there)).toEqual(view(here));
    expect(Object.isFrozen(there) && Object.isFrozen(there.machines) && Object.isFrozen(there.machines[0]!.macs) && Object.isFrozen(there.roles)).toBe(true);
    expect(there.byMac.get(there.machines[0]!.macs[0]!)).toBe(there.machines[0]);
  });

  it('builds from source texts (the PostgreSQL backend\'s profiles) what buildInventory builds', async () => {
    const sources = await readSources(copy(many(40)));
    const label = 'postgres profiles version 7';
    expect(view(await buildInventoryOffThread(sources, label, 16))).toEqual(view(buildInventory(sources, label)));
  });

  it('gives the same errors (file:line:col) for a broken profile set', async () => {
    // Duplicate IPs across 300 machines: every error listed, as the main-thread load lists them.
    const dir = copy(many(300));
    const errOf = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => e);
    const [a, b] = [await errOf(loadInventory(dir)), await errOf(loadInventoryOffThread(dir))];
    expect(b).toBeInstanceOf(ProfileError);
    expect((b as ProfileError).issues).toEqual((a as ProfileError).issues);
    expect((b as ProfileError).issues.length).toBeGreaterThan(200);
  });

  it('reports missing files, YAML errors and unreadable files as the main-thread load does', async () => {
    const dir = copy();
    rmSync(join(dir, 'machines.yaml'));
    writeFileSync(join(dir, 'rolecast.yaml'), 'site: [');
    const err = await loadInventoryOffThread(dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProfileError);
    expect((err as ProfileError).issues).toEqual((await loadInventory(dir).catch((e: unknown) => e) as ProfileError).issues);
    mkdirSync(join(dir, 'machines.yaml')); // a directory where a file belongs: E_PROFILE_IO, not a crash
    const io = await loadInventoryOffThread(dir).catch((e: unknown) => e);
    expect(io).toMatchObject({ code: 'E_PROFILE_IO', message: expect.stringContaining('machines.yaml') });
  });

  it('keeps this thread answering while it loads 5,000 machines', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rolecast-offthread-'));
    dirs.push(dir);
    cpSync(PROFILES, dir, { recursive: true });
    writeFileSync(join(dir, 'rolecast.yaml'), readFileSync(join(dir, 'rolecast.yaml'), 'utf8').replace('cidr: 10.0.0.0/24', 'cidr: 10.0.0.0/16'));
    const hex = (x: number) => x.toString(16).padStart(2, '0');
    writeFileSync(join(dir, 'machines.yaml'), `machines:\n${Array.from({ length: 5000 }, (_, i) => `  - { host: y${i}, mac: [52:54:01:00:${hex(i >> 8)}:${hex(i & 255)}, 52:54:02:00:${hex(i >> 8)}:${hex(i & 255)}], role: web, ip: 10.0.${20 + (i >> 8)}.${i & 255}, sites: [SiteA] }`).join('\n')}\n`);
    const h = monitorEventLoopDelay({ resolution: 5 });
    const inThread = performance.now();
    await loadInventory(dir);
    const inThreadMs = performance.now() - inThread;
    h.enable();
    const inv = await loadInventoryOffThread(dir);
    h.disable();
    expect(inv.machines.length).toBe(5000);
    // Not a timing target (those are benchmarks): the longest stall is a fraction of the whole load.
    expect(h.max / 1e6).toBeLessThan(Math.max(inThreadMs / 2, 40));
  });

  it('hands over every machine\'s files hash, as this thread renders them, and the rootfs content agrees', async () => {
    const dir = copy(many(40));
    const serverKey = Buffer.alloc(32, 9);
    const ctx = { baseUrl: 'http://10.0.0.1:8080', server: '10.0.0.1', serverKey };
    const load = startOffThreadLoad(dir, 7);
    const inv = await load.inventory;
    const handed = await load.hashes({ baseUrl: ctx.baseUrl, server: ctx.server, serverKey });
    expect(handed).toHaveLength(inv.machines.length);
    const here = inv.machines.map((m) => filesHashOf(inv, ctx, m));
    expect(here.every((h) => typeof h === 'string')).toBe(true);
    expect(handed).toEqual(here);
    // Another key gives other hashes (the capture credential is in the files): the key is part of it.
    const other = startOffThreadLoad(dir, 7);
    await other.inventory;
    expect(await other.hashes({ baseUrl: ctx.baseUrl, server: ctx.server, serverKey: Buffer.alloc(32, 1) })).not.toEqual(handed);
    // Seeded, the fleet's content hash of each machine is the one its rootfs request serves and records.
    seedFilesHashes(inv, ctx, handed);
    for (const m of inv.machines) {
      const plan = planBoot({ mac: m.macs[0]!, protocol: 'http', request: 'rootfs', ipxe: true, pxe: true }, inv, { baseUrl: ctx.baseUrl }) as BootTargetPlan;
      expect(machineContentHashOf(plan, inv, ctx)).toBe(machineContent(plan, inv, ctx).hash);
    }
  });

  it('takes a seeded hash instead of rendering (a wrong seed shows), only for its render context', async () => {
    const dir = copy();
    const inv = await loadInventory(dir);
    const ctx = { baseUrl: 'http://10.0.0.1:8080', server: '10.0.0.1', serverKey: Buffer.alloc(32, 3) };
    seedFilesHashes(inv, ctx, inv.machines.map((_, i) => `seed${i}`));
    const plan = (i: number) => planBoot({ mac: inv.machines[i]!.macs[0]!, protocol: 'http', request: 'rootfs', ipxe: true, pxe: true }, inv, { baseUrl: ctx.baseUrl }) as BootTargetPlan;
    expect(machineContentHashOf(plan(0), inv, ctx)).toBe('seed0');
    // Without the key (or with another) the files differ: rendered, never the seed.
    expect(machineContentHashOf(plan(0), inv, { baseUrl: ctx.baseUrl, server: ctx.server })).toBe(filesHashOf(inv, { baseUrl: ctx.baseUrl, server: ctx.server }, inv.machines[0]!));
  });

  it.runIf(process.platform === 'linux')('runs a reload\'s load at a lower priority (the thread\'s own nice value), the start\'s at the process\'s', async () => {
    // Field 19 of /proc/<pid>/task/<tid>/stat is the thread's nice value.
    const nices = () => readdirSync('/proc/self/task').map((t) => {
      try { return Number(readFileSync(`/proc/self/task/${t}/stat`, 'utf8').replace(/^.*\) /, '').split(' ')[16]); } catch { return NaN; }
    });
    const niced = () => nices().filter((n) => n === LOADER_NICE).length;
    // An earlier test's loader thread that hashed (at LOADER_NICE) may still be exiting: wait for it to go,
    // or it is counted now and gone by the second look.
    const settleBy = Date.now() + 5000;
    while (niced() > 0 && Date.now() < settleBy) await new Promise((r) => setTimeout(r, 20));
    const before = niced();
    const reload = startOffThreadLoad(PROFILES, undefined, { nice: LOADER_NICE });
    await reload.inventory;
    expect(niced()).toBe(before + 1);
    reload.close();
    const start = startOffThreadLoad(PROFILES);
    await start.inventory;
    expect(niced()).toBeLessThanOrEqual(before + 1); // the closed one may linger a moment
    start.close();
  });
});

