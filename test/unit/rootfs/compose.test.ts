// The tar index and the spliced rootfs: base members are copied byte for byte (whatever their format:
// GNU long names, pax records, hard links, devices), replaced members are left out, and the result is a
// valid archive GNU tar lists exactly. Archives are made by GNU tar itself.
import { afterAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { indexTar, parseHeader, paxRecord, TarFormatError } from '../../../src/rootfs/tarindex.js';
import { planRootfs, segmentStream, sliceSegments, type Segment } from '../../../src/rootfs/compose.js';
import { parseRange } from '../../../src/http/send.js';

const dir = mkdtempSync(join(tmpdir(), 'rolecast-tar-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function tarOf(name: string, format: 'gnu' | 'posix' | 'ustar', extra: string[] = []): string {
  const src = join(dir, `src-${name}`);
  mkdirSync(join(src, 'etc'), { recursive: true });
  writeFileSync(join(src, 'etc/hostname'), 'base\n');
  writeFileSync(join(src, 'etc/motd'), 'motd\n');
  mkdirSync(join(src, 'usr', 'x'.repeat(90)), { recursive: true });
  writeFileSync(join(src, 'usr', 'x'.repeat(90), 'y'.repeat(90)), 'long\n');
  spawnSync('ln', [join(src, 'etc/motd'), join(src, 'etc/motd.hard')]);
  spawnSync('ln', ['-s', 'motd', join(src, 'etc/motd.link')]);
  const out = join(dir, `${name}.tar`);
  const r = spawnSync('tar', [`--format=${format}`, '--numeric-owner', '--sort=name', ...extra, '-C', src, '-cf', out, '.'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return out;
}

async function bytesOf(segments: readonly Segment[]): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of segmentStream(segments)) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

const files = [
  { path: '/etc/hostname', content: 'lb1\n', mode: 0o644, secret: false },
  { path: '/etc/keepalived/keepalived.conf', content: 'vrrp_instance x {}\n', mode: 0o600, secret: true },
];

describe('tar index', () => {
  it.each(['gnu', 'posix', 'ustar'] as const)('indexes a GNU tar --format=%s archive: names (long ones too), types, contiguous ranges', async (format) => {
    const path = tarOf(format, format);
    const idx = await indexTar(path);
    const names = idx.members.map((m) => m.name).filter(Boolean);
    expect(names).toContain('etc/hostname');
    expect(names).toContain(`usr/${'x'.repeat(90)}/${'y'.repeat(90)}`);
    expect(idx.members.find((m) => m.name === 'etc/motd.link')?.type).toBe('2');
    expect(idx.members.find((m) => m.name === 'etc')?.type).toBe('5');
    expect(idx.dotSlash).toBe(true);
    // Members tile the archive from 0 to the end marker with no gap.
    let at = 0;
    for (const m of idx.members) { expect(m.start).toBe(at); at = m.end; }
    expect(idx.end).toBe(at);
    expect(readFileSync(path).subarray(idx.end, idx.end + 1024).every((b) => b === 0)).toBe(true);
  });

  it('reads the pax path record and GNU base-256 sizes; rejects a bad checksum', () => {
    const pax = Buffer.from('20 path=a/b/c/d/e/f\n17 uid=123456789\n20 linkpath=x/y/z/w\n');
    expect(paxRecord(pax, 'path')).toBe('a/b/c/d/e/f');
    expect(paxRecord(pax, 'linkpath')).toBe('x/y/z/w');
    expect(paxRecord(pax, 'gname')).toBeUndefined();
    const h = Buffer.alloc(512);
    h.write('file', 0);
    h.write('0000644\0', 100);
    h[124] = 0x80; // base-256 size: 2^33 + 5
    h.writeUInt32BE(2, 124 + 4);
    h.writeUInt32BE(5, 124 + 8);
    h[156] = '0'.charCodeAt(0);
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : h[i]!;
    h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
    expect(parseHeader(h)).toEqual({ name: 'file', size: 2 ** 33 + 5, type: '0', linkname: '' });
    h[0] = 'F'.charCodeAt(0);
    expect(parseHeader(h)).toMatch(/checksum/);
    expect(parseHeader(Buffer.alloc(512))).toBe('zero');
  });

  it('names the file and byte offset of a corrupt or truncated archive', async () => {
    const good = readFileSync(tarOf('corrupt', 'gnu'));
    const victim = (await indexTar(join(dir, 'corrupt.tar'))).members[3]!;
    const bad = Buffer.from(good);
    bad[victim.start + 10] = bad[victim.start + 10]! ^ 0xff; // inside that member's header: its checksum no longer matches
    writeFileSync(join(dir, 'bad.tar'), bad);
    await expect(indexTar(join(dir, 'bad.tar'))).rejects.toThrow(`bad.tar: not a valid tar archive at byte ${victim.start}: header checksum`);
    writeFileSync(join(dir, 'short.tar'), good.subarray(0, 700));
    await expect(indexTar(join(dir, 'short.tar'))).rejects.toBeInstanceOf(TarFormatError);
  });
});

describe('spliced rootfs', () => {
  it.each(['gnu', 'posix'] as const)('copies every kept base member verbatim (%s), replaces hostname, adds new files; GNU tar lists it', async (format) => {
    const base = tarOf(`splice-${format}`, format, format === 'posix' ? ['--pax-option=comment=kept-verbatim'] : []);
    const baseBytes = readFileSync(base);
    const idx = await indexTar(base);
    const plan = await planRootfs({ basePath: base, files });
    const out = await bytesOf(plan.segments);
    expect(out.length).toBe(plan.length);
    expect(out.length % 512).toBe(0);
    for (const m of idx.members) {
      const member = baseBytes.subarray(m.start, m.end);
      if (m.name === 'etc/hostname') expect(out.indexOf(member)).toBe(-1);
      else expect(out.indexOf(member), m.name).toBeGreaterThanOrEqual(0);
    }
    if (format === 'posix') expect(out.includes(Buffer.from('comment=kept-verbatim'))).toBe(true);
    writeFileSync(join(dir, `out-${format}.tar`), out);
    const list = spawnSync('tar', ['-tf', join(dir, `out-${format}.tar`)], { encoding: 'utf8' });
    expect(list.status, list.stderr).toBe(0);
    const names = list.stdout.trim().split('\n');
    expect(names.filter((n) => n === './etc/hostname')).toHaveLength(1);
    expect(names).toEqual(expect.arrayContaining(['./etc/keepalived/', './etc/keepalived/keepalived.conf', './etc/motd.hard']));
    const x = join(dir, `x-${format}`);
    mkdirSync(x);
    expect(spawnSync('tar', ['-xf', join(dir, `out-${format}.tar`), '-C', x]).status).toBe(0);
    expect(readFileSync(join(x, 'etc/hostname'), 'utf8')).toBe('lb1\n');
    expect(readFileSync(join(x, 'etc/motd.hard'), 'utf8')).toBe('motd\n');
    // Same inputs, same bytes.
    expect((await bytesOf((await planRootfs({ basePath: base, files })).segments)).equals(out)).toBe(true);
  });

  it('a base replaced after planning (new image version) fails the stream instead of mixing versions', async () => {
    const base = tarOf('replaced', 'gnu');
    const plan = await planRootfs({ basePath: base, files });
    const next = `${base}.new`;
    writeFileSync(next, readFileSync(base)); // same bytes, new inode: still a different version
    renameSync(next, base);
    await expect(bytesOf(plan.segments)).rejects.toThrow(/changed after this response was planned/);
    // A fresh plan reads the new version.
    expect((await bytesOf((await planRootfs({ basePath: base, files })).segments)).length).toBeGreaterThan(0);
  });

  it.each(['gnu', 'posix'] as const)('a base hard link to a replaced file follows it and links to the machine\'s version (%s)', async (format) => {
    const base = tarOf(`relink-${format}`, format);
    const idx = await indexTar(base);
    expect(idx.members.find((m) => m.name === 'etc/motd.hard')).toMatchObject({ type: '1', linkname: 'etc/motd' });
    const motd = [{ path: '/etc/motd', content: 'machine motd\n', mode: 0o644, secret: false }];
    const out = join(dir, `relink-${format}-out.tar`);
    writeFileSync(out, await bytesOf((await planRootfs({ basePath: base, files: motd })).segments));
    const x = join(dir, `relink-${format}-x`);
    mkdirSync(x);
    const r = spawnSync('tar', ['-xf', out, '-C', x], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(readFileSync(join(x, 'etc/motd'), 'utf8')).toBe('machine motd\n');
    expect(readFileSync(join(x, 'etc/motd.hard'), 'utf8')).toBe('machine motd\n');
    expect(statSync(join(x, 'etc/motd.hard')).ino).toBe(statSync(join(x, 'etc/motd')).ino);
    const bb = join(dir, `relink-${format}-bb`);
    mkdirSync(bb);
    expect(spawnSync('busybox', ['tar', '-xf', out, '-C', bb]).status).toBe(0);
    expect(readFileSync(join(bb, 'etc/motd.hard'), 'utf8')).toBe('machine motd\n');
  });

  it('without a base: a tar of the generated files alone', async () => {
    const plan = await planRootfs({ files });
    writeFileSync(join(dir, 'alone.tar'), await bytesOf(plan.segments));
    expect(spawnSync('tar', ['-tf', join(dir, 'alone.tar')], { encoding: 'utf8' }).stdout.trim().split('\n')).toEqual(['etc/', 'etc/keepalived/', 'etc/hostname', 'etc/keepalived/keepalived.conf']);
  });

  it('slices segments to any byte range of their concatenation', async () => {
    const base = tarOf('slice', 'gnu');
    const plan = await planRootfs({ basePath: base, files });
    const whole = await bytesOf(plan.segments);
    for (const [a, b] of [[0, 1], [0, whole.length], [511, 513], [1000, whole.length - 3], [whole.length - 1, whole.length]] as const) {
      expect((await bytesOf(sliceSegments(plan.segments, a, b))).equals(whole.subarray(a, b))).toBe(true);
    }
  });
});

describe('Range header', () => {
  it.each([
    [undefined, 'none'], ['bytes=0-99', { start: 0, end: 100 }], ['bytes=100-', { start: 100, end: 1000 }],
    ['bytes=-10', { start: 990, end: 1000 }], ['bytes=900-5000', { start: 900, end: 1000 }], ['bytes=-5000', { start: 0, end: 1000 }],
    ['bytes=1000-', 'bad'], ['bytes=5-4', 'bad'], ['bytes=-0', 'bad'], ['bytes=0-1,5-6', 'none'], ['items=0-1', 'none'], ['bytes=x-1', 'none'],
  ])('%s of 1000 bytes -> %j', (header, want) => {
    expect(parseRange(header, 1000)).toEqual(want);
  });
});

describe('acquireVersion: one handle per file version, shared by the responses that send it', () => {
  it('shares a version, opens a new one for a replaced file, refuses a file that is not the planned version', async () => {
    const { acquireVersion } = await import('../../../src/rootfs/compose.js');
    const p = join(dir, 'shared.bin');
    writeFileSync(p, 'one');
    const v1 = statSync(p);
    const seg = (st: typeof v1): Extract<Segment, { kind: 'file' }> => ({ kind: 'file', path: p, start: 0, end: st.size, version: { ino: st.ino, size: st.size, mtimeMs: st.mtimeMs } });
    const a = await acquireVersion(seg(v1));
    const b = await acquireVersion(seg(v1));
    expect(b.fh).toBe(a.fh);
    writeFileSync(`${p}.new`, 'two!');
    renameSync(`${p}.new`, p);
    const v2 = statSync(p);
    const c = await acquireVersion(seg(v2));
    expect(c.fh).not.toBe(a.fh);
    expect((await c.fh.read(Buffer.alloc(4), 0, 4, 0)).buffer.toString()).toBe('two!');
    expect((await a.fh.read(Buffer.alloc(3), 0, 3, 0)).buffer.toString()).toBe('one'); // the old version's sharers keep theirs
    await expect(acquireVersion({ ...seg(v2), version: { ...seg(v2).version!, size: 99 } })).rejects.toThrow(/changed after this response was planned/);
    for (const h of [a, b, c]) h.release();
    expect(await bytesOf([seg(v2)])).toEqual(Buffer.from('two!'));
  });
});
