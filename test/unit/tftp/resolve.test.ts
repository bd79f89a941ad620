import { describe, expect, it } from 'vitest';
import { mkdtempSync, mkdirSync, writeFileSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createResolver, normalisePath } from '../../../src/tftp/resolve.js';
import { loadInventory } from '../../../src/inventory/index.js';
import type { Inventory } from '../../../src/inventory/types.js';

const base = await loadInventory(resolve(import.meta.dirname, '../../fixtures/profiles'));
const w101 = base.byHost.get('w101')!;
// Give w101 a UUID, as an operator would for pxelinux's first lookup.
const withUuid = { ...w101, uuid: '01020304-0506-0708-090a-0b0c0d0e0f10' };
const inv = { ...base, machines: base.machines.map((m) => (m === w101 ? withUuid : m)), byMac: new Map([...base.byMac].map(([k, m]) => [k, m === w101 ? withUuid : m])) } as Inventory;

const dir = mkdtempSync(join(tmpdir(), 'rolecast-res-'));
mkdirSync(join(dir, 'root'));
writeFileSync(join(dir, 'root', 'pxelinux.0'), 'loader');
writeFileSync(join(dir, 'outside'), 'secret');
symlinkSync(join(dir, 'outside'), join(dir, 'root', 'link'));
mkdirSync(join(dir, 'images', 'build'), { recursive: true });
writeFileSync(join(dir, 'images', 'build', 'vmlinuz'), 'kernel');
const r = createResolver({ roots: [join(dir, 'root'), join(dir, 'nope')], imagesDir: join(dir, 'images'), getInventory: () => inv, ctx: { baseUrl: 'http://10.0.0.1:8080', server: '10.0.0.1' } });
const client = { address: '10.0.0.101' };

describe('TFTP path resolution', () => {
  it.each([
    ['/pxelinux.0', 'pxelinux.0'], ['pxelinux.0', 'pxelinux.0'], ['//a//b/./c', 'a/b/c'], ['\\boot\\x.efi', 'boot/x.efi'],
  ])('normalises %s', (inp, rel) => expect(normalisePath(inp)).toEqual({ rel }));

  it.each(['../x', 'a/../../x', '..\\x', '', '/', 'a\x01b'])('refuses %j', (p) => expect('denied' in normalisePath(p)).toBe(true));

  it('serves a loader from a root, with the MAC of the reserved address', async () => {
    expect(await r.resolve('/pxelinux.0', client)).toMatchObject({ kind: 'file', label: 'loader', size: 6, mac: w101.macs[0] });
  });

  it('refuses a symlink out of the root, and traversal', async () => {
    expect(await r.resolve('link', client)).toMatchObject({ kind: 'missing' });
    expect(await r.resolve('../outside', client)).toMatchObject({ kind: 'denied' });
  });

  it('renders pxelinux.cfg/01-<mac> through planBoot', async () => {
    const got = await r.resolve('pxelinux.cfg/01-52-54-00-00-02-01', client);
    expect(got).toMatchObject({ kind: 'virtual', label: 'config', mac: '52:54:00:00:02:01' });
    expect(got.kind === 'virtual' && got.content.toString()).toMatch(/KERNEL images\/kernel/);
  });

  it('pxelinux.cfg/<uuid>: both the SMBIOS text form and option 97 raw byte order', async () => {
    expect(await r.resolve('pxelinux.cfg/01020304-0506-0708-090a-0b0c0d0e0f10', client)).toMatchObject({ kind: 'virtual', mac: w101.macs[0] });
    expect(await r.resolve('pxelinux.cfg/04030201-0605-0807-090a-0b0c0d0e0f10', client)).toMatchObject({ kind: 'virtual', mac: w101.macs[0] });
  });

  it('pxelinux.cfg/<IP in hex>: the full form only', async () => {
    expect(await r.resolve('pxelinux.cfg/0A000065', client)).toMatchObject({ kind: 'virtual', mac: w101.macs[0] });
    expect(await r.resolve('pxelinux.cfg/0A00006', client)).toMatchObject({ kind: 'missing' });
  });

  it('grub.cfg-01-<mac> and grub.cfg-<IP hex> in whatever $prefix the GRUB build uses', async () => {
    for (const p of ['grub.cfg-01-52-54-00-00-02-01', 'grub/grub.cfg-01-52-54-00-00-02-01', 'EFI/debian/grub.cfg-01-52-54-00-00-02-01', 'grub/grub.cfg-0A000065']) {
      const got = await r.resolve(p, { address: '10.0.0.222' }); // the name alone says which machine
      expect(got.kind === 'virtual' && got.content.toString(), p).toMatch(/^# rolecast: w101 as web/);
    }
    expect(await r.resolve('grub/grub.cfg-0A0000', client)).toMatchObject({ kind: 'missing' });
  });

  it('GRUB modules and lists from $prefix/<platform>/ come from the GRUB module directory, confined', async () => {
    mkdirSync(join(dir, 'grub', 'x86_64-efi'), { recursive: true });
    writeFileSync(join(dir, 'grub', 'x86_64-efi', 'http.mod'), 'module');
    const g = createResolver({ roots: [], imagesDir: join(dir, 'images'), getInventory: () => inv, ctx: { baseUrl: 'http://10.0.0.1:8080', server: '10.0.0.1' }, grubDir: join(dir, 'grub') });
    expect(await g.resolve('/grub/x86_64-efi/http.mod', client)).toMatchObject({ kind: 'file', size: 6, mac: w101.macs[0] });
    expect(await g.resolve('/grub/x86_64-efi/nope.mod', client)).toMatchObject({ kind: 'missing' });
    expect(await g.resolve('/grub/x86_64-efi/../../outside', client)).toMatchObject({ kind: 'denied' });
  });

  it('a bare grub.cfg (Debian grubnetx64.efi sources $prefix/x86_64-efi/grub.cfg) goes by the client reserved address', async () => {
    for (const p of ['grub.cfg', 'grub/grub.cfg', 'grub/x86_64-efi/grub.cfg']) {
      const got = await r.resolve(p, client);
      expect(got, p).toMatchObject({ kind: 'virtual', label: 'config', mac: w101.macs[0], host: 'w101' });
      // GRUB 2.06 cannot name HTTP port 8080: images over TFTP.
      expect(got.kind === 'virtual' && got.content.toString()).toMatch(/linux \(tftp,10\.0\.0\.1\)\/images\/kernel /);
    }
    expect(await r.resolve('grub/grub.cfg', { address: '10.0.0.222' })).toMatchObject({ kind: 'missing' });
  });

  it('unknown machines follow the policy (bundled: boot rescue); pxelinux.cfg/default goes by the client reserved address', async () => {
    const got = await r.resolve('pxelinux.cfg/01-52-54-00-ab-cd-ef', client);
    expect(got.kind === 'virtual' && got.content.toString()).toMatch(/as rescue/);
    const byAddress = await r.resolve('pxelinux.cfg/default', client);
    expect(byAddress.kind === 'virtual' && byAddress.content.toString()).toMatch(/w101 as web/);
    const stranger = await r.resolve('pxelinux.cfg/default', { address: '10.0.0.222' });
    expect(stranger.kind === 'virtual' && stranger.content.toString()).toMatch(/LOCALBOOT 0/);
  });

  it('images/<name> maps to the inventory image file', async () => {
    expect(await r.resolve('images/kernel', client)).toMatchObject({ kind: 'file', label: 'image', size: 6 });
    expect(await r.resolve('images/initrd', client)).toMatchObject({ kind: 'missing' });
  });
});
