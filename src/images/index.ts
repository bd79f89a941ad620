/**
 * Image builders behind `rolecast images build <target>` and `rolecast images rollback <role>`.
 * Targets: initramfs (common initramfs + kernel), test (busybox CI rootfs), memtest, a role name
 * (lb, web, db, file: mmdebstrap), or "all" (everything but the mmdebstrap roles: "roles" for those).
 */
import type { Logger } from '../log.js';
import { RolecastError } from '../errors.js';
import { buildInitramfs } from './initramfs.js';
import { buildTestImage } from './testimage.js';
import { buildMemtest } from './maintenance.js';
import { buildRoleImage, ROLE_PACKAGES } from './role.js';

export { buildInitramfs, buildInitramfsImage, commonInitramfsImage, COMMON_MODULES, defaultKernelVersion } from './initramfs.js';
export { buildTestImage } from './testimage.js';
export { buildMemtest } from './maintenance.js';
export { buildRoleImage, rollbackRoleImage, ROLE_PACKAGES, COMMON_PACKAGES } from './role.js';
export { listVersions } from './versions.js';

export interface BuiltImage {
  target: string;
  path: string;
  sha256: string;
}

export interface BuildTargetOptions {
  /** images/build (the inventory's image paths are relative to images/). */
  out: string;
  logger?: Logger;
  onProgress?: (line: string) => void;
  kernelVersion?: string;
}

export const IMAGE_TARGETS = ['initramfs', 'test', 'memtest', 'all', 'roles', ...Object.keys(ROLE_PACKAGES)];

export async function buildImageTarget(target: string, opts: BuildTargetOptions): Promise<BuiltImage[]> {
  const say = (l: string) => opts.onProgress?.(l);
  switch (target) {
    case 'initramfs': {
      say('initramfs: busybox + modules + /init');
      const r = await buildInitramfs({ out: opts.out, ...(opts.kernelVersion ? { kernelVersion: opts.kernelVersion } : {}), ...(opts.logger ? { logger: opts.logger } : {}) });
      return [{ target, path: r.path, sha256: r.sha256 }];
    }
    case 'test': {
      say('test: busybox test rootfs');
      const r = await buildTestImage(opts.out);
      return [{ target, ...r }];
    }
    case 'memtest':
      say('memtest: memtest86+ from Debian');
      return (await buildMemtest(opts.out)).map((r) => ({ target, ...r }));
    case 'all':
      return [...await buildImageTarget('initramfs', opts), ...await buildImageTarget('test', opts), ...await buildImageTarget('memtest', opts)];
    case 'roles': {
      const all: BuiltImage[] = [];
      for (const role of Object.keys(ROLE_PACKAGES)) all.push(...await buildImageTarget(role, opts));
      return all;
    }
    default: {
      if (!ROLE_PACKAGES[target]) throw new RolecastError('E_UNKNOWN_IMAGE_TARGET', `unknown image target "${target}" (one of: ${IMAGE_TARGETS.join(', ')})`);
      const r = await buildRoleImage(target, { out: opts.out, ...(opts.logger ? { logger: opts.logger } : {}), ...(opts.onProgress ? { onProgress: opts.onProgress } : {}), ...(opts.kernelVersion ? { kernelVersion: opts.kernelVersion } : {}) });
      return [{ target, path: r.path, sha256: r.sha256 }];
    }
  }
}
