#!/usr/bin/env node
// Thin launcher: the CLI is compiled to dist/ by `npm run build`.
// libuv's pool (4 threads unless set) runs every file-system call: HTTP's open/stat/realpath per rootfs,
// TFTP's realpath/stat/open per request and the state journal's fdatasync share it, so in a boot storm a
// TFTP answer queued behind hundreds of rootfs requests' calls (bench:storm). libuv reads it at first use.
process.env.UV_THREADPOOL_SIZE ??= '16';
import('../dist/cli.js').then((m) => m.main(process.argv.slice(2))).then(
  (code) => { process.exitCode = code ?? 0; },
  (err) => { console.error(err instanceof Error ? err.message : err); process.exitCode = 1; },
);
