/** Boot-once through the composition root: the maintenance target boots once, then the role again. */
import { afterAll, expect, it } from 'vitest';
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startServer, type Running } from '../../../src/main.js';
import { defaultConfig } from '../../../src/config.js';
import { silentLogger } from '../../../src/log.js';
import { setBootOnce } from '../../../src/inventory/edit.js';
import { FileProfileEditor } from '../../../src/state/file/profiles.js';
import { waitFor } from '../../helpers/netns.js';
import { placeholderImages } from '../../helpers/images.js';

const dir = mkdtempSync(join(tmpdir(), 'rolecast-bootonce-'));
let running: Running | undefined;
afterAll(async () => { await running?.close(); rmSync(dir, { recursive: true, force: true }); });

it('serves the boot-once target once, clears boot_once in the YAML, then serves the role', async () => {
  cpSync(resolve(import.meta.dirname, '../../fixtures/profiles'), join(dir, 'profiles'), { recursive: true });
  const profiles = join(dir, 'profiles');
  await setBootOnce(new FileProfileEditor(profiles), 'w106', 'memtest');
  const cfg = { ...defaultConfig(), profilesDir: profiles, dataDir: join(dir, 'data'), imagesDir: join(dir, 'images'), address: '127.0.0.1' };
  cfg.http = { ...cfg.http, host: '127.0.0.1', port: 0 };
  cfg.tftp = { ...cfg.tftp, enabled: false };
  cfg.dhcp = { ...cfg.dhcp, mode: 'off' };
  await placeholderImages(profiles, cfg.imagesDir);
  running = await startServer(cfg, silentLogger());
  const url = `http://127.0.0.1:${running.httpPort}/boot/52:54:00:00:02:06.ipxe?arch=0`;
  expect(await (await fetch(url)).text()).toMatch(/w106 as memtest \(boot once\)/);
  await waitFor(() => !readFileSync(join(profiles, 'machines.yaml'), 'utf8').includes('boot_once'), 20_000);
  await waitFor(() => running!.store.current().byHost.get('w106')?.bootOnce === undefined, 20_000);
  expect(await (await fetch(url)).text()).toMatch(/w106 as web\n/);
});
