/**
 * A fast path for machines.yaml in its usual shape: `machines:` and then one single-line flow mapping
 * per machine (`  - { host: w1, mac: [52:54:00:00:00:01], role: web, ip: 10.0.0.1 }`), comments and
 * blank lines between. It builds the same YAML nodes (the `yaml` library's classes, same ranges and
 * line table) that parseDocument would, so parse-machines.ts and every message (file:line:col) are
 * unchanged; it is ~20x faster and needs a fraction of the memory (parseDocument was ~60% of a
 * 100,000-machine validate and 1.1 GB).
 * Anything it does not recognise — a tab, a quote with an escape, a multi-line entry, a null, a float,
 * an anchor, a trailing comma — returns undefined, and the full parser reads the file: the fast path
 * only ever accepts text whose meaning under YAML 1.2 core is plain (test/unit/inventory/fast-machines.test.ts
 * compares both parsers over the fixtures and mutated inputs).
 */
import { LineCounter, Pair, Scalar, YAMLMap, YAMLSeq } from 'yaml';

/** Thrown inside the scanner when the text leaves the recognised subset; never escapes this module. */
class NotFast extends Error {}
const notFast = (): never => { throw new NotFast(); };

const SP = 0x20;
const COMMA = 0x2c;
const COLON = 0x3a;
const HASH = 0x23;
// Characters that end a plain scalar's word in flow context (or that we leave to the full parser: quotes).
const STOP = new Set([SP, COMMA, 0x5b, 0x5d, 0x7b, 0x7d, HASH, 0x22, 0x27]);
// A plain scalar may not start with an indicator (YAML 1.2 §7.3.3); we also refuse the ones that may
// start one when followed by a safe character (- ? :), leaving those to the full parser.
const NO_START = new Set('-?:&*!|>%@`'.split('').map((c) => c.charCodeAt(0)));

const isWordChar = (c: number) => c > SP && c < 0x7f && !STOP.has(c);

// YAML 1.2 core schema tags other than str, in the library's order. Ints and booleans are resolved
// here exactly as yaml's core tags do; a null, an octal/hex int or any float goes to the full parser.
const NULL_RE = /^(?:~|[Nn]ull|NULL)?$/;
const TRUE_RE = /^(?:[Tt]rue|TRUE)$/;
const FALSE_RE = /^(?:[Ff]alse|FALSE)$/;
const INT_RE = /^[-+]?[0-9]+$/;
const OTHER_RE = [/^0o[0-7]+$/, /^0x[0-9a-fA-F]+$/, /^(?:[-+]?\.(?:inf|Inf|INF)|\.nan|\.NaN|\.NAN)$/,
  /^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+$/, /^[-+]?(?:\.[0-9]+|[0-9]+\.[0-9]*)$/];

// First characters that may begin a null, a boolean or a number: anything else is a string as written.
const MAY_RESOLVE = new Set('~+-.0123456789nNtTfF'.split('').map((c) => c.charCodeAt(0)));

function plainValue(text: string): string | number | boolean {
  // Most scalars are names, MACs and addresses: no tag's pattern can match a word that starts otherwise,
  // nor one with a colon or two dots in it (none of the patterns allows those).
  if (text !== '' && (!MAY_RESOLVE.has(text.charCodeAt(0)) || text.includes(':') || text.indexOf('.') !== text.lastIndexOf('.'))) return text;
  if (NULL_RE.test(text)) return notFast();
  if (TRUE_RE.test(text)) return true;
  if (FALSE_RE.test(text)) return false;
  if (INT_RE.test(text)) return parseInt(text, 10);
  for (const re of OTHER_RE) if (re.test(text)) return notFast();
  return text;
}

function scalar(value: unknown, source: string, start: number, end: number, type: Scalar.Type): Scalar {
  const s = new Scalar(value);
  s.range = [start, end, end];
  s.source = source;
  s.type = type;
  return s;
}

/** A flow mapping read as plain values (directMachines): its keys and values in order, duplicates kept. */
export class PlainMap {
  readonly keys: string[] = [];
  readonly values: PlainValue[] = [];
}
export type PlainValue = string | number | boolean | PlainMap | PlainValue[];

/**
 * What a scan builds from the text it accepts: the yaml library's nodes (fastMachines) or plain values
 * (directMachines). Both scans accept exactly the same text; only what they make of it differs.
 */
interface Build<V, M extends V, Q extends V> {
  scalar(value: string | number | boolean, source: string, start: number, end: number, type: Scalar.Type): V;
  map(): M;
  pair(m: M, key: V, value: V): void;
  mapEnd(m: M, start: number, end: number): void;
  seq(): Q;
  item(q: Q, v: V): void;
  seqEnd(q: Q, start: number, end: number): void;
  size(c: M | Q): number;
  isScalar(v: V): boolean;
}

const NODES: Build<Scalar | YAMLMap | YAMLSeq, YAMLMap, YAMLSeq> = {
  scalar,
  map: () => { const m = new YAMLMap(); m.flow = true; return m; },
  pair: (m, key, value) => { m.items.push(new Pair(key, value)); },
  mapEnd: (m, start, end) => { m.range = [start, end, end]; },
  seq: () => { const q = new YAMLSeq(); q.flow = true; return q; },
  item: (q, v) => { q.items.push(v); },
  seqEnd: (q, start, end) => { q.range = [start, end, end]; },
  size: (c) => c.items.length,
  isScalar: (v) => v instanceof Scalar,
};

const PLAIN: Build<PlainValue, PlainMap, PlainValue[]> = {
  scalar: (value) => value,
  map: () => new PlainMap(),
  pair: (m, key, value) => { m.keys.push(key as string); m.values.push(value); },
  mapEnd: () => undefined,
  seq: () => [],
  item: (q, v) => { q.push(v); },
  seqEnd: () => undefined,
  size: (c) => (c instanceof PlainMap ? c.keys.length : c.length),
  isScalar: (v) => !(v instanceof PlainMap) && !Array.isArray(v),
};

/** One line's worth of flow collection, scanned from `i` (an offset into the whole text) up to `end`. */
class Line<V, M extends V, Q extends V> {
  constructor(private readonly b: Build<V, M, Q>, private readonly s: string, public i: number, private readonly end: number) {}

  private at(): number { return this.i < this.end ? this.s.charCodeAt(this.i) : -1; }

  spaces(): void { while (this.at() === SP) this.i++; }

  /** A plain scalar's text: words separated by spaces (kept as written); `:` inside a word only before a word char. */
  private word(multiWord: boolean): string {
    const start = this.i;
    if (NO_START.has(this.at())) notFast();
    let end = start;
    for (;;) {
      for (let c = this.at(); c === COLON ? isWordChar(this.peek(1)) : isWordChar(c); c = this.at()) this.i++;
      end = this.i;
      if (!multiWord || this.at() !== SP) break;
      this.spaces();
      if (!isWordChar(this.at()) || this.at() === COLON) break; // ": ", ",", "}", "#"... end the scalar
    }
    if (end === start) notFast();
    this.i = end;
    return this.s.slice(start, end);
  }

  private peek(n: number): number { return this.i + n < this.end ? this.s.charCodeAt(this.i + n) : -1; }

  /** "text" or 'text' without escapes, quotes or line breaks inside: always a string. */
  private quoted(q: number): V {
    const start = this.i++;
    while (this.at() !== q) { const c = this.at(); if (c < SP || c >= 0x7f || c === 0x5c) notFast(); this.i++; }
    this.i++;
    const text = this.s.slice(start + 1, this.i - 1);
    const next = this.at(); // "a"b is an error for the full parser: let it say so
    if (next !== SP && next !== COMMA && next !== 0x5d && next !== 0x7d && next !== -1) notFast();
    return this.b.scalar(text, text, start, this.i, q === 0x22 ? Scalar.QUOTE_DOUBLE : Scalar.QUOTE_SINGLE);
  }

  value(): V {
    const c = this.at();
    if (c === 0x7b) return this.map();
    if (c === 0x5b) return this.seq();
    if (c === 0x22 || c === 0x27) return this.quoted(c);
    const start = this.i;
    const text = this.word(true);
    return this.b.scalar(plainValue(text), text, start, this.i, Scalar.PLAIN);
  }

  /** `{ key: value, ... }`: keys are one plain word followed by ": "; no trailing comma. */
  map(): M {
    const m = this.b.map();
    const start = this.i++;
    this.spaces();
    while (this.at() !== 0x7d) {
      if (this.b.size(m)) { if (this.at() !== COMMA) notFast(); this.i++; this.spaces(); }
      const kStart = this.i;
      const text = this.word(false);
      const value = plainValue(text);
      if (text.length > 64 || typeof value !== 'string' || value.includes(':')) notFast();
      const key = this.b.scalar(value, text, kStart, this.i, Scalar.PLAIN);
      if (this.at() !== COLON || this.peek(1) !== SP) notFast();
      this.i += 2;
      this.spaces();
      this.b.pair(m, key, this.value());
      this.spaces();
      if (this.at() === -1) notFast();
    }
    this.i++;
    this.b.mapEnd(m, start, this.i);
    return m;
  }

  /** `[ value, ... ]` of scalars (a `key: value` item would be a mapping: left to the full parser). */
  seq(): Q {
    const q = this.b.seq();
    const start = this.i++;
    this.spaces();
    while (this.at() !== 0x5d) {
      if (this.b.size(q)) { if (this.at() !== COMMA) notFast(); this.i++; this.spaces(); }
      const v = this.value();
      if (!this.b.isScalar(v)) notFast();
      this.b.item(q, v);
      this.spaces();
      if (this.at() === -1) notFast();
    }
    this.i++;
    this.b.seqEnd(q, start, this.i);
    return q;
  }

  /** Only spaces and a comment (after at least one space) may follow. */
  rest(): void {
    const before = this.i;
    this.spaces();
    if (this.at() === -1) return;
    if (this.at() !== HASH || this.i === before) notFast();
  }
}

const blankOrComment = (line: string) => /^ *(#.*)?$/.test(line);

/** A machines.yaml in the fast subset, scanned: one mapping per machine, with where each one is. */
interface Scan<M> {
  lc: LineCounter;
  /** Offset of the `machines` key, and of the list (its first `-`). */
  keyAt: number;
  listAt: number;
  items: M[];
  /** Per item: the offset of its `{`, the end of its line, its line number (1-based). */
  starts: number[];
  ends: number[];
  lines: number[];
}

function scan<V, M extends V, Q extends V>(text: string, b: Build<V, M, Q>): Scan<M> | undefined {
  if (/[\t\r\uFEFF]/.test(text)) return undefined;
  const out: Scan<M> = { lc: new LineCounter(), keyAt: -1, listAt: -1, items: [], starts: [], ends: [], lines: [] };
  let indent = -1;
  let off = 0;
  let lineNo = 0;
  try {
    while (off < text.length || off === 0) {
      out.lc.addNewLine(off);
      lineNo++;
      const nl = text.indexOf('\n', off);
      const end = nl === -1 ? text.length : nl;
      const line = text.slice(off, end);
      if (blankOrComment(line)) { /* nothing */ } else if (out.keyAt < 0) {
        if (!/^machines:( +#.*| *)$/.test(line)) return undefined;
        out.keyAt = off;
      } else {
        const dash = line.indexOf('- {');
        if (dash < 0 || (indent >= 0 && dash !== indent) || line.slice(0, dash).trim() !== '') return undefined;
        if (indent < 0) { indent = dash; out.listAt = off + dash; }
        const l = new Line(b, text, off + dash + 2, end);
        out.starts.push(l.i);
        out.items.push(l.map());
        out.ends.push(end);
        out.lines.push(lineNo);
        l.rest();
      }
      if (nl === -1) break;
      off = nl + 1;
      if (off === text.length) { out.lc.addNewLine(off); break; }
    }
  } catch (err) {
    if (err instanceof NotFast) return undefined;
    throw err;
  }
  return out.items.length ? out : undefined;
}

/** The nodes and line table parseDocument would give for this machines.yaml, or undefined (use it). */
export function fastMachines(text: string): { root: YAMLMap; lc: LineCounter } | undefined {
  const s = scan(text, NODES);
  if (!s) return undefined;
  const root = new YAMLMap();
  const seq = new YAMLSeq();
  seq.items = s.items;
  seq.range = [s.listAt, text.length, text.length];
  root.items.push(new Pair(scalar('machines', 'machines', s.keyAt, s.keyAt + 8, Scalar.PLAIN), seq));
  root.range = [s.keyAt, text.length, text.length];
  return { root, lc: s.lc };
}

/**
 * The same subset as fastMachines, read into plain values instead of the yaml library's nodes (no node,
 * range or pair objects: ~5x less to allocate), for parse-machines.ts's directMachines. `node(i)` gives
 * machine i's mapping as nodes (what fastMachines would have built for it), for a machine that the
 * direct reading leaves to the node reader.
 */
export interface PlainMachines {
  lc: LineCounter;
  items: PlainMap[];
  lines: number[];
  node(i: number): YAMLMap;
}

export function plainMachines(text: string): PlainMachines | undefined {
  const s = scan(text, PLAIN);
  if (!s) return undefined;
  return { lc: s.lc, items: s.items, lines: s.lines, node: (i) => new Line(NODES, text, s.starts[i]!, s.ends[i]!).map() as YAMLMap };
}
