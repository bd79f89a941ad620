/**
 * formatManifestBuffer (what a rootfs request sends: the base's lines prepared once per base, the
 * machine's paths merged in) must give exactly formatManifest's text, for any base and any generated
 * paths: replacing base paths, new ones sorting anywhere (before, between, after, inside excluded
 * prefixes), directories the base has or lacks, secrets, odd characters.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatManifest, formatManifestBuffer, type Manifest, type ManifestEntry } from '../../../src/images/manifest.js';

const segment = fc.constantFrom('etc', 'usr', 'bin', 'proc', 'tmp', 'var', 'run', 'a b', 'Z', 'é', 'x-1', 'x.1', 'x', 'lib', 'ß', '_');
const path = fc.array(segment, { minLength: 1, maxLength: 4 }).map((p) => p.join('/'));

const entry = (p: string, kind: number): ManifestEntry => kind === 0
  ? { path: p, type: 'f', mode: 0o644, uid: 0, gid: 0, sha256: 'ab'.repeat(32), size: 3 }
  : kind === 1 ? { path: p, type: 'd', mode: 0o755, uid: 1, gid: 2 }
    : kind === 2 ? { path: p, type: 'l', mode: 0o777, uid: 0, gid: 0, target: '../x y', sha256: 'cd'.repeat(32) }
      : { path: p, type: 'o', mode: 0o600, uid: 0, gid: 0 };

const base = fc.array(fc.tuple(path, fc.integer({ min: 0, max: 3 })), { maxLength: 60 })
  .map((es) => new Map(es.map(([p, k]) => [p, entry(p, k)])) as Manifest);
const generated = fc.array(fc.record({
  path: path.map((p) => (p.length % 2 ? `/${p}` : p)),
  mode: fc.constantFrom(0o644, 0o600, 0o755),
  secret: fc.boolean(),
  content: fc.option(fc.string(), { nil: undefined }),
}), { maxLength: 12 });
const dirs = fc.array(path, { maxLength: 8 });
const header = { server: 'http://10.0.0.1:8080', mac: '52:54:00:00:02:01', image: 'web', version: 'web-0123456789ab.tar', sha256: undefined };

describe('formatManifestBuffer', () => {
  it('gives formatManifest\'s bytes for any base, generated paths and directories', () => {
    fc.assert(fc.property(base, generated, dirs, (b, g, d) => {
      expect(formatManifestBuffer(b, header, g, d).toString()).toBe(formatManifest(b, header, g, d));
    }), { numRuns: 500 });
  });

  it('the same base prepared once serves many machines, each with its own lines', () => {
    const b: Manifest = new Map(Array.from({ length: 2000 }, (_, i) => [`usr/share/f${i}`, entry(`usr/share/f${i}`, i % 4)]));
    for (let m = 0; m < 5; m++) {
      const g = [{ path: `/etc/hostname`, mode: 0o644, secret: false, content: `w${m}\n` }, { path: `/usr/share/f${m * 7}`, mode: 0o600, secret: m % 2 === 0, content: 'x' }];
      const h = { ...header, mac: `52:54:00:00:02:0${m}` };
      expect(formatManifestBuffer(b, h, g, ['etc']).toString()).toBe(formatManifest(b, h, g, ['etc']));
    }
  });
});
