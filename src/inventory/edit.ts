/**
 * Edits an operator would make by hand, done to the YAML text itself: only the bytes of one value
 * change, so comments, flow style and layout stay as written. The edited profile set is validated in
 * memory before anything is written, and the write is atomic (temp file + rename).
 */
import { join } from 'node:path';
import { isMap, isScalar, isSeq, parseDocument, type Node, type YAMLMap } from 'yaml';
import { RolecastError } from '../errors.js';
import { writeAtomic } from '../fsutil.js';
import { MACHINES_FILE, parseSources, readSources } from './load.js';

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


async function editMachine(profilesDir: string, host: string, key: string, value: string | null): Promise<void> {
  const sources = await readSources(profilesDir);
  const src = sources.find((s) => s.name === MACHINES_FILE);
  if (!src) throw new RolecastError('E_NOT_FOUND', `${profilesDir} has no ${MACHINES_FILE}`);
  const edited = spliceValue(src.text, host, key, value);
  // Validate the whole profile set as it would be after the edit; throws ProfileError, nothing written.
  parseSources(sources.map((s) => (s === src ? { ...s, text: edited } : s)));
  await writeAtomic(join(profilesDir, MACHINES_FILE), edited);
}

export async function assignRole(profilesDir: string, host: string, role: string): Promise<void> {
  if (!/^[A-Za-z0-9_-]+$/.test(role)) throw new RolecastError('E_USAGE', `"${role}" is not a role name`);
  await editMachine(profilesDir, host, 'role', role);
}

/** Boot a maintenance target once (or clear it with null); the machine goes back to its role after. */
export async function setBootOnce(profilesDir: string, host: string, target: string | null): Promise<void> {
  if (target !== null && !/^[A-Za-z0-9_-]+$/.test(target)) throw new RolecastError('E_USAGE', `"${target}" is not a role name`);
  await editMachine(profilesDir, host, 'boot_once', target);
}
