/**
 * The server's own secret key: 32 random bytes in <data>/server.key (mode 0600), made on first use.
 * Everything rolecast derives per machine or keys against (content-hash HMACs in the API, per-boot
 * tokens, per-machine capture credentials) derives from it, so nothing secret is guessable from what
 * the API publishes. Several servers sharing state share this key through their state backend.
 */
import { randomBytes, createHmac } from 'node:crypto';
import { mkdir, open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { RolecastError } from './errors.js';

const cache = new Map<string, Promise<Buffer>>();

async function loadOrCreate(dataDir: string): Promise<Buffer> {
  const file = join(dataDir, 'server.key');
  try {
    const key = await readFile(file);
    if (key.length < 32) throw new RolecastError('E_SERVER_KEY', `${file} is shorter than 32 bytes: remove it to make a new key (per-machine credentials change)`);
    return key;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  await mkdir(dataDir, { recursive: true });
  const key = randomBytes(32);
  try {
    // O_EXCL: two processes starting together both end up with the one key that won.
    const fh = await open(file, 'wx', 0o600);
    try {
      await fh.write(key);
      await fh.sync();
    } finally {
      await fh.close();
    }
    return key;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return readFile(file);
    throw err;
  }
}

/** The key for this data directory (read once per process). */
export function serverKey(dataDir: string): Promise<Buffer> {
  let p = cache.get(dataDir);
  if (!p) {
    p = loadOrCreate(dataDir);
    p.catch(() => cache.delete(dataDir));
    cache.set(dataDir, p);
  }
  return p;
}

/** A value derived from the server key for one purpose and subject (hex HMAC-SHA256). */
export function derive(key: Buffer, purpose: string, subject: string): string {
  return createHmac('sha256', key).update(`${purpose}\0${subject}`).digest('hex');
}

/** The key if this data directory has one already (read-only tools: `rolecast diff`, `render`); never makes one. */
export async function existingServerKey(dataDir: string): Promise<Buffer | undefined> {
  const exists = await readFile(join(dataDir, 'server.key')).then(() => true, () => false);
  return exists ? serverKey(dataDir) : undefined;
}
