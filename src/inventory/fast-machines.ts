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

function plainValue(text: string): string | number | boolean {
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

/** One line's worth of flow collection, scanned from `i` (an offset into the whole text) up to `end`. */
class Line {
  constructor(private readonly s: string, public i: number, private readonly end: number) {}

  private at(): number { return this.i < this.end ? this.s.charCodeAt(this.i) : -1; }

  spaces(): void { while (this.at() === SP) this.i++; }

  /** Plain scalar: words separated by spaces (kept as written); `:` inside a word only before a word char. */
  private plain(multiWord: boolean): Scalar {
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
    const text = this.s.slice(start, end);
    return scalar(plainValue(text), text, start, end, Scalar.PLAIN);
  }

  private peek(n: number): number { return this.i + n < this.end ? this.s.charCodeAt(this.i + n) : -1; }

  /** "text" or 'text' without escapes, quotes or line breaks inside: always a string. */
  private quoted(q: number): Scalar {
    const start = this.i++;
    while (this.at() !== q) { const c = this.at(); if (c < SP || c >= 0x7f || c === 0x5c) notFast(); this.i++; }
    this.i++;
    const text = this.s.slice(start + 1, this.i - 1);
    const next = this.at(); // "a"b is an error for the full parser: let it say so
    if (next !== SP && next !== COMMA && next !== 0x5d && next !== 0x7d && next !== -1) notFast();
    return scalar(text, text, start, this.i, q === 0x22 ? Scalar.QUOTE_DOUBLE : Scalar.QUOTE_SINGLE);
  }

  value(): Scalar | YAMLMap | YAMLSeq {
    const c = this.at();
    if (c === 0x7b) return this.map();
    if (c === 0x5b) return this.seq();
    if (c === 0x22 || c === 0x27) return this.quoted(c);
    return this.plain(true);
  }

  /** `{ key: value, ... }`: keys are one plain word followed by ": "; no trailing comma. */
  map(): YAMLMap {
    const m = new YAMLMap();
    m.flow = true;
    const start = this.i++;
    this.spaces();
    while (this.at() !== 0x7d) {
      if (m.items.length) { if (this.at() !== COMMA) notFast(); this.i++; this.spaces(); }
      const key = this.plain(false);
      if (key.range![1] - key.range![0] > 64 || typeof key.value !== 'string' || key.value.includes(':')) notFast();
      if (this.at() !== COLON || this.peek(1) !== SP) notFast();
      this.i += 2;
      this.spaces();
      m.items.push(new Pair(key, this.value()));
      this.spaces();
      if (this.at() === -1) notFast();
    }
    this.i++;
    m.range = [start, this.i, this.i];
    return m;
  }

  /** `[ value, ... ]` of scalars (a `key: value` item would be a mapping: left to the full parser). */
  seq(): YAMLSeq {
    const q = new YAMLSeq();
    q.flow = true;
    const start = this.i++;
    this.spaces();
    while (this.at() !== 0x5d) {
      if (q.items.length) { if (this.at() !== COMMA) notFast(); this.i++; this.spaces(); }
      const v = this.value();
      if (!(v instanceof Scalar)) notFast();
      q.items.push(v);
      this.spaces();
      if (this.at() === -1) notFast();
    }
    this.i++;
    q.range = [start, this.i, this.i];
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

/** The nodes and line table parseDocument would give for this machines.yaml, or undefined (use it). */
export function fastMachines(text: string): { root: YAMLMap; lc: LineCounter } | undefined {
  if (/[\t\r\uFEFF]/.test(text)) return undefined;
  const lc = new LineCounter();
  const root = new YAMLMap();
  const seq = new YAMLSeq();
  let indent = -1;
  let off = 0;
  try {
    while (off < text.length || off === 0) {
      lc.addNewLine(off);
      const nl = text.indexOf('\n', off);
      const end = nl === -1 ? text.length : nl;
      const line = text.slice(off, end);
      if (blankOrComment(line)) { /* nothing */ } else if (!root.items.length) {
        if (!/^machines:( +#.*| *)$/.test(line)) return undefined;
        root.items.push(new Pair(scalar('machines', 'machines', off, off + 8, Scalar.PLAIN), seq));
        root.range = [off, text.length, text.length];
      } else {
        const dash = line.indexOf('- {');
        if (dash < 0 || (indent >= 0 && dash !== indent) || line.slice(0, dash).trim() !== '') return undefined;
        if (indent < 0) { indent = dash; seq.range = [off + dash, text.length, text.length]; }
        const l = new Line(text, off + dash + 2, end);
        seq.items.push(l.map());
        l.rest();
      }
      if (nl === -1) break;
      off = nl + 1;
      if (off === text.length) { lc.addNewLine(off); break; }
    }
  } catch (err) {
    if (err instanceof NotFast) return undefined;
    throw err;
  }
  return seq.items.length ? { root, lc } : undefined;
}
