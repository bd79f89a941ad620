// Exit 0 when every image an `images build` target makes for the bundled profiles is in images/build.
// Used by setup.sh serve to build each target once.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '..');
const FILES = {
  initramfs: ['vmlinuz', 'initrd.img'],
  test: ['rootfs/test.tar'],
  memtest: ['memtest/memtest86+x64.bin', 'memtest/memtest86+x64.efi'],
};
const files = FILES[process.argv[2]];
if (!files) { console.error(`image-built: unknown target ${process.argv[2]}`); process.exit(2); }
process.exit(files.every((f) => existsSync(join(ROOT, 'images/build', f))) ? 0 : 1);
