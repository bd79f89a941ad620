/**
 * Typed reads from YAML nodes that record every problem with its file:line:col instead of stopping at
 * the first: the loader reports all errors at once.
 */
import { isMap, isScalar, isSeq, type LineCounter, type Node, type Pair, type YAMLMap } from 'yaml';
import type { ProfileIssue } from '../errors.js';

export interface Loc { file: string; line: number; col: number }

export class Reader {
  constructor(readonly file: string, private readonly lc: LineCounter, readonly issues: ProfileIssue[]) {}

  loc(node: unknown): Loc {
    const off = (node as Node | undefined)?.range?.[0] ?? 0;
    const p = this.lc.linePos(off);
    return { file: this.file, line: p.line, col: p.col };
  }

  err(node: unknown, path: string, message: string): void {
    this.issues.push({ ...this.loc(node), path, message });
  }

  /** A mapping whose keys must all be in `allowed`; unknown keys (typos) are errors. */
  map(node: unknown, path: string, allowed: readonly string[]): Map<string, Pair<unknown, unknown>> | undefined {
    if (!isMap(node)) {
      this.err(node, path, 'must be a mapping');
      return undefined;
    }
    const out = new Map<string, Pair<unknown, unknown>>();
    for (const pair of (node as YAMLMap).items) {
      const key = isScalar(pair.key) ? String(pair.key.value) : '';
      if (!allowed.includes(key)) {
        this.err(pair.key, `${path ? `${path}.` : ''}${key}`, `unknown key "${key}" (allowed: ${allowed.join(', ')})`);
      } else if (out.has(key)) {
        this.err(pair.key, `${path ? `${path}.` : ''}${key}`, `duplicate key "${key}"`);
      } else {
        out.set(key, pair);
      }
    }
    return out;
  }

  /** The scalar value of a node, or undefined with an error if it is not a scalar of the wanted type. */
  str(node: unknown, path: string): string | undefined {
    if (isScalar(node) && typeof node.value === 'string') return node.value;
    // A plain number where a string is expected (e.g. a host name "101") is taken as text.
    if (isScalar(node) && typeof node.value === 'number' && node.source !== undefined) return String(node.source);
    this.err(node, path, 'must be a string');
    return undefined;
  }

  int(node: unknown, path: string, min: number, max: number): number | undefined {
    if (isScalar(node) && typeof node.value === 'number' && Number.isInteger(node.value)) {
      if (node.value < min || node.value > max) {
        this.err(node, path, `${node.value} is out of range ${min}–${max}`);
        return undefined;
      }
      return node.value;
    }
    this.err(node, path, `must be an integer ${min}–${max}`);
    return undefined;
  }

  bool(node: unknown, path: string): boolean | undefined {
    if (isScalar(node) && typeof node.value === 'boolean') return node.value;
    this.err(node, path, 'must be true or false');
    return undefined;
  }

  oneOf<T extends string>(node: unknown, path: string, values: readonly T[]): T | undefined {
    const s = this.str(node, path);
    if (s === undefined) return undefined;
    if ((values as readonly string[]).includes(s)) return s as T;
    this.err(node, path, `"${s}" is not one of: ${values.join(', ')}`);
    return undefined;
  }

  /** A list (a single item is accepted where `single` says so, e.g. mac: one or many). */
  list(node: unknown, path: string, single = false): unknown[] | undefined {
    if (isSeq(node)) return node.items;
    if (single && isScalar(node)) return [node];
    this.err(node, path, 'must be a list');
    return undefined;
  }

  strList(node: unknown, path: string, single = false): string[] {
    const items = this.list(node, path, single) ?? [];
    const out: string[] = [];
    items.forEach((n, i) => {
      const s = this.str(n, `${path}[${i}]`);
      if (s !== undefined) out.push(s);
    });
    return out;
  }
}

/** The value node of a key, when present. */
export function val(m: Map<string, Pair<unknown, unknown>> | undefined, key: string): unknown {
  return m?.get(key)?.value ?? undefined;
}

export function has(m: Map<string, Pair<unknown, unknown>> | undefined, key: string): boolean {
  return m?.has(key) ?? false;
}
