/**
 * Placeholder files for every image the profiles name that is not there yet, for tests that check boot
 * scripts without building real images: rolecast answers a machine whose images are missing with an
 * "unbootable" script (tested in test/integration/http/images-missing.test.ts), not its boot script.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { loadInventory } from '../../src/inventory/index.js';
import { imageFile } from '../../src/imagecheck.js';

export async function placeholderImages(profilesDir: string, imagesDir: string, except: readonly string[] = []): Promise<string[]> {
  const inv = await loadInventory(profilesDir);
  const made: string[] = [];
  for (const img of Object.values(inv.images)) {
    const file = imageFile(img, imagesDir);
    if (existsSync(file) || except.includes(img.name)) continue;
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, `placeholder for image ${img.name}\n`);
    made.push(file);
  }
  return made;
}
