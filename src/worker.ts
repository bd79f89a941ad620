/**
 * A worker thread on one of our own modules, as built (dist/.../x.js) or run from source (x.ts under
 * tsx: the tests, `node --import tsx src/cli.ts`). From source the thread registers the TypeScript
 * loader first, then imports the .ts entry; the loader thread (src/inventory/offthread.ts) and the DHCP
 * thread (src/dhcp/thread.ts) start theirs this way.
 */
import { Worker, type ResourceLimits } from 'node:worker_threads';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

/** `entry` names the built module (`new URL('./x.js', import.meta.url)`); `resourceLimits` sizes its V8 heap. */
export function startModuleWorker(entry: URL, workerData: unknown, resourceLimits?: ResourceLimits): Worker {
  const opts = { workerData, ...(resourceLimits ? { resourceLimits } : {}) };
  if (!import.meta.url.endsWith('.ts')) return new Worker(entry, opts);
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx/esm/api').replace(/\.cjs$/, '.mjs')).href;
  const source = entry.href.replace(/\.js$/, '.ts');
  const boot = `import { register } from ${JSON.stringify(tsx)}; register(); await import(${JSON.stringify(source)});`;
  return new Worker(new URL(`data:text/javascript,${encodeURIComponent(boot)}`), opts);
}
