/**
 * The machines.yaml fast path against the full YAML parser: for the fixtures, generated inventories and
 * thousands of mutated inputs, parseSources must give the same result (machines, positions) or the same
 * errors (file:line:col, path, message) with the fast path on and off. The fast path must also actually
 * take the usual shapes (else this would compare the full parser with itself). Its direct reading (plain
 * values, no nodes; the default) must give the same machines (same keys in the same order) and the same
 * errors too; it records no positions, which only messages need.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseSources, type SourceFile } from '../../../src/inventory/load.js';
import { fastMachines, plainMachines } from '../../../src/inventory/fast-machines.js';
import { ProfileError, formatIssue } from '../../../src/errors.js';

const PROFILES = resolve(import.meta.dirname, '../../fixtures/profiles');
const M = 'machines.yaml';
const others: SourceFile[] = ['rolecast.yaml', 'secrets.yaml', ...readdirSync(join(PROFILES, 'roles')).map((f) => `roles/${f}`)]
  .map((name) => ({ name, text: readFileSync(join(PROFILES, name), 'utf8') }));
const fixture = readFileSync(join(PROFILES, M), 'utf8');

type Mode = 'direct' | 'nodes' | 'full';
const OPTS = { direct: {}, nodes: { directMachines: false }, full: { fastMachines: false } } as const;

/** Everything parseSources says about a machines.yaml, as comparable JSON: with positions, and without. */
function outcomes(text: string, mode: Mode): { withLocs: string; noLocs: string } {
  try {
    const p = parseSources([...others, { name: M, text }], OPTS[mode]);
    return { withLocs: JSON.stringify({ machines: p.machines, locs: [...p.locs] }), noLocs: JSON.stringify({ machines: p.machines }) };
  } catch (err) {
    if (!(err instanceof ProfileError)) throw err;
    const issues = JSON.stringify(err.issues.map(formatIssue));
    return { withLocs: issues, noLocs: issues };
  }
}
/** The direct reading records no positions: compared without them. */
const outcome = (text: string, mode: Mode, withLocs = mode !== 'direct') => outcomes(text, mode)[withLocs ? 'withLocs' : 'noLocs'];

const same = (text: string) => {
  const full = outcomes(text, 'full');
  expect(outcome(text, 'nodes'), text).toBe(full.withLocs);
  expect(outcome(text, 'direct'), text).toBe(full.noLocs);
};

// Lines that exercise every machine key and the scalar kinds the fast path resolves itself.
const EXTRA = [
  '  - { host: w201, mac: 52:54:00:00:09:01, role: test, ip: 10.0.0.201, cmdline: console=ttyS0  quiet, boot: pxelinux }  # spare',
  '  - { host: 202, mac: [52:54:00:00:09:02], role: test, ip: 10.0.0.202, confirm_wipe: true, uuid: 5A0C3F1E-0000-4000-8000-000000000202 }',
  '  - { host: "w203", mac: [\'52:54:00:00:09:03\'], role: test, ip: 10.0.0.203, boot_once: memtest, loaders: { bios: undionly.kpxe } }',
  '  - { host: w204, mac: [52:54:00:00:09:04], role: test, ip: 10.0.0.204, confirm_wipe: FALSE, boot_once: wipe }',
  '  - { host: w205, mac: [52:54:00:00:09:05], role: test, ip: 10.0.0.205, bmc: { type: ipmi, address: 10.0.9.5, user: ADMIN, password: secret:nope } }',
  '  - { host: w206, mac: [52:54:00:00:09:06], role: test, ip: 10.0.0.206, files: [] }',
];

function generated(n: number): string {
  const hex = (x: number) => x.toString(16).padStart(2, '0');
  const lines = ['machines:'];
  for (let i = 0; i < n; i++) lines.push(`  - { host: g${i}, mac: [52:54:01:00:${hex(i >> 8)}:${hex(i & 255)}, 52:54:02:00:${hex(i >> 8)}:${hex(i & 255)}], role: web, ip: 10.0.${1 + (i >> 8)}.${i & 255}, sites: [${i % 2 ? 'SiteA' : 'SiteB'}] }`);
  return `${lines.join('\n')}\n`;
}

const corpus = [fixture, `${fixture}${EXTRA.join('\n')}\n`, generated(300), fixture.replace(/\n$/, ''), fixture.replace(/^ {2}/gm, '')];

describe('machines.yaml fast path', () => {
  it('takes the usual one-line-per-machine shapes', () => {
    for (const text of corpus) expect(fastMachines(text), text.slice(0, 80)).toBeDefined();
    for (const text of corpus) expect(plainMachines(text), text.slice(0, 80)).toBeDefined();
    expect(fastMachines(readFileSync(resolve(import.meta.dirname, '../../../profiles/machines.yaml'), 'utf8'))).toBeDefined();
  });

  it('reads the usual machines straight from plain values (no positions recorded for them)', () => {
    const hex = (x: number) => x.toString(16).padStart(2, '0');
    const direct = Array.from({ length: 150 }, (_, i) => `  - { host: v${i}, mac: [52:54:03:00:00:${hex(i)}, 52:54:04:00:00:${hex(i)}], role: web, ip: 10.0.0.${i + 20}, sites: [${i % 2 ? 'SiteA' : 'SiteB'}] }`);
    direct.push('  - { host: lb9, mac: [52:54:00:00:0a:01, 52:54:00:00:0a:02], role: lb, ip: 10.0.0.250, addresses: { wan: 203.0.113.9 }, vrrp: { priority: 100, state: BACKUP } }',
      EXTRA[0]!, '  - { host: w202, mac: [52:54:00:00:09:02], role: test, ip: 10.0.0.202, confirm_wipe: true, uuid: 5A0C3F1E-0000-4000-8000-000000000202, boot_once: wipe }');
    // A numeric host name, loaders and files are left to the node reader, machine by machine.
    const viaNodes = [EXTRA[1]!.replace('10.0.0.202', '10.0.0.207').replace('09:02', '09:07'), EXTRA[2]!, EXTRA[5]!];
    const text = `machines:\n${[...direct, ...viaNodes].join('\n')}\n`;
    const p = parseSources([...others, { name: M, text }]);
    expect(p.machines).toHaveLength(direct.length + viaNodes.length);
    const located = new Set([...p.locs.keys()].filter((k) => k.startsWith(`${M}#`)).map((k) => /#(machines\[\d+\])/.exec(k)?.[1]));
    expect(located).toEqual(new Set(viaNodes.map((_, i) => `machines[${direct.length + i}]`)));
    expect(outcome(text, 'direct')).toBe(outcome(text, 'full', false));
  });

  it('gives what the full parser gives for the corpus', () => {
    for (const text of corpus) same(text);
  });

  it('leaves what it does not recognise to the full parser', () => {
    for (const text of ['machines: []\n', 'machines:\n  - host: a\n', 'machines:\n\t- { host: a }\n', 'machines:\n  - { host: ~ }\n',
      'machines:\n  - { host: a, ip: 1.5 }\n', 'machines:\n  - { host: "a\\"b" }\n', 'machines:\n  - { host: a, }\n', 'machines:\n  - { host: &x a }\n',
      'machines:\n  - { host: a,\n      role: b }\n', '---\nmachines:\n  - { host: a }\n', 'machines:\n  - { host: a }#c\n', 'machines:\n  - { host: a }\nother: 1\n']) {
      expect(fastMachines(text), text).toBeUndefined();
      expect(plainMachines(text), text).toBeUndefined();
      same(text);
    }
  });

  it('agrees with the full parser on mutated inputs', () => {
    const snippets = [' ', ',', ':', ': ', '[', ']', '{', '}', '#', ' #', '"', "'", '-', '- ', '\t', '\n', '\n  - ', '0', '1.5', 'x', 'true', 'null', '~', '&a ', '*a', '!', '|', '0x1F', ', extra: 1', ', host: dup', ', mac: [52:54:00:00:01:01]'];
    let fastTaken = 0;
    fc.assert(fc.property(
      fc.constantFrom(...corpus.slice(0, 2)),
      fc.array(fc.tuple(fc.nat(), fc.oneof(fc.constantFrom(...snippets), fc.constant(''), fc.string({ maxLength: 4 })), fc.nat({ max: 3 })), { minLength: 1, maxLength: 3 }),
      (base, edits) => {
        let text = base;
        for (const [at, ins, del] of edits) { const i = at % (text.length + 1); text = text.slice(0, i) + ins + text.slice(i + del); }
        if (fastMachines(text)) fastTaken++;
        same(text);
      },
    ), { numRuns: Number(process.env.FAST_RUNS ?? 300), seed: Number(process.env.FAST_SEED ?? 15) });
    if (process.env.FAST_RUNS) console.log(`fast path took ${fastTaken} mutants`);
    expect(fastTaken).toBeGreaterThan(60); // many mutants stay in the fast subset (and must agree)
  });

  it('agrees on line-level edits: duplicated, dropped and swapped machines', () => {
    const lines = `${fixture}${EXTRA.join('\n')}`.split('\n');
    fc.assert(fc.property(fc.nat(), fc.nat(), fc.constantFrom('dup', 'drop', 'swap'), (a, b, op) => {
      const l = [...lines];
      const i = 2 + (a % (l.length - 2));
      const j = 2 + (b % (l.length - 2));
      if (op === 'dup') l.splice(j, 0, l[i]!);
      else if (op === 'drop') l.splice(i, 1);
      else [l[i], l[j]] = [l[j]!, l[i]!];
      same(`${l.join('\n')}\n`);
    }), { numRuns: 100, seed: 15 });
  });
});
