// Where a native addon built by scripts/build-native.mjs lives: native/<name>/build/Release/<name>.node
// under the package root (the folder with package.json and native/), found upwards from this module so
// that the same code works from src/ under tsx and from dist/ once built.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

function packageRoot(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (let dir = here; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'package.json')) && existsSync(path.join(dir, 'native'))) return dir;
    if (path.dirname(dir) === dir) return path.resolve(here, '..', '..');
  }
}

/** The built addon file of native/<name> (it may not exist: the caller falls back when it does not). */
export function addonFile(name: 'sendfile' | 'tftp' | 'neigh' | 'dhcpio'): string {
  return path.join(packageRoot(), 'native', name, 'build', 'Release', `${name}.node`);
}
