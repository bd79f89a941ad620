/**
 * Content-addressed image versions: <dir>/<name>-<sha12>.tar, with <name>.tar a relative symlink to
 * the current one and <name>.previous.tar to the one before, so a bad build is one rollback away
 * (DSAS: "keep the old master"). Older versions are pruned. Symlinks are swapped with rename, so a
 * reader (the HTTP server streaming a rootfs) sees either the old or the new image, never neither.
 */
import { readdir, readlink, rename, rm, symlink } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { RolecastError } from '../errors.js';

export interface ImageVersions {
  current?: string;
  previous?: string;
  all: string[];
}

async function linkTarget(path: string): Promise<string | undefined> {
  try {
    return basename(await readlink(path));
  } catch {
    return undefined;
  }
}

async function pointAt(dir: string, link: string, target: string): Promise<void> {
  const tmp = join(dir, `.${link}.tmp-${process.pid}`);
  await rm(tmp, { force: true });
  await symlink(target, tmp);
  await rename(tmp, join(dir, link));
}

export async function listVersions(dir: string, name: string): Promise<ImageVersions> {
  const re = new RegExp(`^${name.replace(/[^\w-]/g, '\\$&')}-[0-9a-f]{12}\\.tar$`);
  const all = (await readdir(dir).catch(() => [] as string[])).filter((f) => re.test(f)).sort();
  const current = await linkTarget(join(dir, `${name}.tar`));
  const previous = await linkTarget(join(dir, `${name}.previous.tar`));
  return { ...(current ? { current } : {}), ...(previous ? { previous } : {}), all };
}

/**
 * Make <file> (already in dir, named <name>-<sha12>.tar) current. Rebuilding the same content is a
 * no-op that keeps the previous pointer as it was.
 */
export async function publishVersion(dir: string, name: string, file: string): Promise<ImageVersions> {
  const before = await listVersions(dir, name);
  if (before.current !== file) {
    if (before.current) await pointAt(dir, `${name}.previous.tar`, before.current);
    await pointAt(dir, `${name}.tar`, file);
  }
  const now = await listVersions(dir, name);
  for (const f of now.all) {
    if (f !== now.current && f !== now.previous) await rm(join(dir, f), { force: true });
  }
  return listVersions(dir, name);
}

/** Swap current and previous. */
export async function rollbackVersion(dir: string, name: string): Promise<ImageVersions> {
  const v = await listVersions(dir, name);
  if (!v.previous || !v.all.includes(v.previous)) {
    throw new RolecastError('E_NO_PREVIOUS', `no previous version of ${name} in ${dir} to roll back to`);
  }
  await pointAt(dir, `${name}.tar`, v.previous);
  if (v.current) await pointAt(dir, `${name}.previous.tar`, v.current);
  return listVersions(dir, name);
}
