import { afterEach, describe, expect, it } from 'vitest';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pino } from 'pino';
import type { Logger } from '../../../src/log.js';
import { InventoryStore } from '../../../src/inventory/watch.js';
import { loadInventory } from '../../../src/inventory/index.js';
import { assignRole, setBootOnce } from '../../../src/inventory/edit.js';
import { FileProfileEditor } from '../../../src/state/file/profiles.js';
import { ProfileError } from '../../../src/errors.js';
import { waitFor } from '../../helpers/netns.js';

const PROFILES = resolve(import.meta.dirname, '../../fixtures/profiles');
let dirs: string[] = [];
let stores: InventoryStore[] = [];
afterEach(() => {
  for (const s of stores) s.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  dirs = []; stores = [];
});

function copy(): string {
  const d = mkdtempSync(join(tmpdir(), 'rolecast-inv-'));
  dirs.push(d);
  cpSync(PROFILES, d, { recursive: true });
  return d;
}

function logCapture(): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const logger: Logger = pino({ level: 'info' }, { write: (s: string) => { lines.push(JSON.parse(s) as Record<string, unknown>); } }) as unknown as Logger;
  return { logger, lines };
}

/** Write like an editor: temp file, then rename over the original. */
function editorWrite(file: string, text: string): void {
  writeFileSync(`${file}.swp`, text);
  renameSync(`${file}.swp`, file);
}

describe('InventoryStore hot reload (real files, real fs.watch)', () => {
  it('keeps the last good snapshot on a broken edit, swaps on a fixed one', async () => {
    const dir = copy();
    const { logger, lines } = logCapture();
    const store = await InventoryStore.open(dir, logger, 50);
    stores.push(store);
    store.watch();
    const first = store.current();
    const swaps: string[] = [];
    store.onSwap((inv) => swaps.push(inv.byHost.get('w106')!.role));
    const file = join(dir, 'machines.yaml');
    const text = readFileSync(file, 'utf8');

    editorWrite(file, text.replace('host: w106, mac: [52:54:00:00:02:06, 52:54:00:00:12:06], role: web', 'host: w106, mac: [52:54:00:00:02:06, 52:54:00:00:12:06], role: nosuch'));
    await waitFor(() => lines.some((l) => String(l.msg).includes('keeping the last good snapshot')));
    expect(store.current()).toBe(first);
    const warn = lines.find((l) => String(l.msg).includes('profiles invalid'))!;
    expect(warn.issues).toEqual([expect.stringMatching(/^machines\.yaml:\d+:\d+: machines\[9\]\.role: unknown role "nosuch"/)]);

    editorWrite(file, text.replace('host: w106, mac: [52:54:00:00:02:06, 52:54:00:00:12:06], role: web', 'host: w106, mac: [52:54:00:00:02:06, 52:54:00:00:12:06], role: lb'));
    await waitFor(() => store.current() !== first);
    expect(store.current().byHost.get('w106')!.role).toBe('lb');
    expect(swaps).toEqual(['lb']);
    expect(Object.isFrozen(store.current().machines[0])).toBe(true);
  });

  it('an edit and a SIGHUP reload load the files once: the watcher does not read them again once they settle', async () => {
    const dir = copy();
    const { logger, lines } = logCapture();
    let loads = 0;
    const store = await InventoryStore.open(dir, logger, 50, () => { loads++; return loadInventory(dir); }, await loadInventory(dir));
    stores.push(store);
    store.watch();
    const file = join(dir, 'machines.yaml');
    writeFileSync(file, `${readFileSync(file, 'utf8')}# an edit\n`);
    const r = await store.reload({ force: true }); // the operator's SIGHUP, before the watcher's settle time is up
    expect(r.changed).toBe(true);
    await new Promise((res) => setTimeout(res, 600)); // several settle periods: the watcher has seen the edit settle
    expect(loads).toBe(1);
    expect(lines.filter((l) => l.msg === 'profiles reloaded')).toHaveLength(1);
    // A later edit is still loaded by the watcher.
    writeFileSync(file, `${readFileSync(file, 'utf8')}# another edit\n`);
    await waitFor(() => loads === 2);
    await waitFor(() => lines.filter((l) => l.msg === 'profiles reloaded').length === 2);
  });

  it('reload() without a change does not swap', async () => {
    const store = await InventoryStore.open(copy(), logCapture().logger);
    stores.push(store);
    const before = store.current();
    expect(await store.reload()).toEqual({ ok: true, changed: false });
    expect(store.current()).toBe(before);
  });
});

describe('assignRole / setBootOnce edit the YAML in place', () => {
  it('changes only the role value and keeps every other byte', async () => {
    const dir = copy();
    const file = join(dir, 'machines.yaml');
    const before = readFileSync(file, 'utf8');
    await assignRole(new FileProfileEditor(dir), 'w106', 'lb');
    const after = readFileSync(file, 'utf8');
    expect(after).toBe(before.replace('52:54:00:00:12:06], role: web', '52:54:00:00:12:06], role: lb'));
  });

  it('refuses an unknown role or host and writes nothing', async () => {
    const dir = copy();
    const file = join(dir, 'machines.yaml');
    const before = readFileSync(file, 'utf8');
    await expect(assignRole(new FileProfileEditor(dir), 'w106', 'nosuch')).rejects.toBeInstanceOf(ProfileError);
    await expect(assignRole(new FileProfileEditor(dir), 'w999', 'lb')).rejects.toThrow('no machine "w999" in machines.yaml');
    expect(readFileSync(file, 'utf8')).toBe(before);
  });

  it('adds and removes boot_once, and refuses a destructive target without confirm_wipe', async () => {
    const dir = copy();
    const file = join(dir, 'machines.yaml');
    const before = readFileSync(file, 'utf8');
    await setBootOnce(new FileProfileEditor(dir), 'w106', 'memtest');
    expect(readFileSync(file, 'utf8')).toBe(before.replace('role: web, ip: 10.0.0.106, sites: [], addresses: { wan: 203.0.113.6 } }', 'role: web, ip: 10.0.0.106, sites: [], addresses: { wan: 203.0.113.6 }, boot_once: memtest }'));
    await setBootOnce(new FileProfileEditor(dir), 'w106', null);
    expect(readFileSync(file, 'utf8')).toBe(before);
    await expect(setBootOnce(new FileProfileEditor(dir), 'w106', 'wipe')).rejects.toThrow(/"wipe" is destructive: set confirm_wipe: true/);
  });
});
