/**
 * Edits an operator would make by hand, done to the YAML text itself: only the bytes of one value
 * change, so comments, flow style and layout stay as written. Edits go through the state layer's
 * ProfileEditor: serialised, compare-and-swap, validated as a whole profile set before they are stored.
 */
import { isMap, isScalar, isSeq, parseDocument, type Node, type YAMLMap } from 'yaml';
import { RolecastError } from '../errors.js';
import { MACHINES_FILE } from './load.js';
import type { ProfileEditor } from '../state/types.js';

function machineNode(text: string, host: string): YAMLMap {
  const doc = parseDocument(text, { version: '1.2' });
  const list = isMap(doc.contents) ? doc.contents.get('machines', true) : undefined;
  if (!isSeq(list)) throw new RolecastError('E_EDIT', `${MACHINES_FILE} has no machines list`);
  for (const item of list.items) {
    if (isMap(item) && item.get('host') === host) return item;
  }
  throw new RolecastError('E_NOT_FOUND', `no machine "${host}" in ${MACHINES_FILE}`);
}

/** Replace the value of `key` in the machine's mapping, or add `key: value` at the end of a flow map. */
function spliceValue(text: string, host: string, key: string, value: string | null): string {
  const m = machineNode(text, host);
  const pair = m.items.find((p) => isScalar(p.key) && p.key.value === key);
  if (pair && isScalar(pair.value)) {
    const [start, end] = (pair.value as Node).range!;
    if (value !== null) return text.slice(0, start) + value + text.slice(end);
    // Remove ", key: value" (flow) including the separator before it.
    const keyStart = (pair.key as Node).range![0];
    const before = text.lastIndexOf(',', keyStart);
    return text.slice(0, before >= 0 && before > m.range![0] ? before : keyStart) + text.slice(end);
  }
  if (value === null) return text;
  if (!m.flow) throw new RolecastError('E_EDIT', `machine "${host}" is not a one-line flow mapping; edit ${MACHINES_FILE} by hand`);
  // Insert before the closing brace of the flow mapping.
  const close = text.lastIndexOf('}', m.range![1]);
  let at = close;
  while (at > 0 && text[at - 1] === ' ') at--;
  return `${text.slice(0, at)}, ${key}: ${value}${text.slice(at)}`;
}


/** The current scalar value of `key` in the machine's mapping (null when absent). */
function currentValue(text: string, host: string, key: string): string | null {
  const v = machineNode(text, host).get(key);
  return v === undefined || v === null ? null : String(v);
}

export interface MachineEditOptions {
  /**
   * The value the caller saw (null: the key was absent). When the file says otherwise now, another edit
   * came first: the edit is refused with E_CONFLICT rather than silently overwriting it.
   */
  ifCurrent?: string | null;
  expectHash?: string;
  who?: string;
}

async function editMachine(editor: ProfileEditor, host: string, key: string, value: string | null, o: MachineEditOptions = {}): Promise<void> {
  await editor.edit(MACHINES_FILE, (text) => {
    if (o.ifCurrent !== undefined) {
      const now = currentValue(text, host, key);
      if (now !== o.ifCurrent) {
        throw new RolecastError('E_CONFLICT', `${host}: ${key} is ${now ?? '(not set)'} now, not ${o.ifCurrent ?? '(not set)'} — another edit came first; look again and retry`);
      }
    }
    return spliceValue(text, host, key, value);
  }, { ...(o.expectHash ? { expectHash: o.expectHash } : {}), ...(o.who ? { who: o.who } : {}), what: `${host}: ${key} = ${value ?? '(removed)'}` });
}

export async function assignRole(editor: ProfileEditor, host: string, role: string, o?: MachineEditOptions): Promise<void> {
  if (!/^[A-Za-z0-9_-]+$/.test(role)) throw new RolecastError('E_USAGE', `"${role}" is not a role name`);
  await editMachine(editor, host, 'role', role, o);
}

/** Boot a maintenance target once (or clear it with null); the machine goes back to its role after. */
export async function setBootOnce(editor: ProfileEditor, host: string, target: string | null, o?: MachineEditOptions): Promise<void> {
  if (target !== null && !/^[A-Za-z0-9_-]+$/.test(target)) throw new RolecastError('E_USAGE', `"${target}" is not a role name`);
  await editMachine(editor, host, 'boot_once', target, o);
}
