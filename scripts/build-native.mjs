#!/usr/bin/env node
// Builds the native sendfile engine (native/sendfile) with npm's bundled node-gyp, against the installed Node's
// headers (npm is configured with nodedir=/usr, so nothing is downloaded). A failed build is a warning: the HTTP
// server falls back to streaming files through user space. Under CI=true it is an error.
import { spawn } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const strict = process.env.CI === 'true';

function fail(reason) {
  if (strict) {
    console.error(`build:native: FAILED (CI=true): ${reason}`);
    process.exit(1);
  }
  console.warn(`build:native: WARNING: native sendfile engine not built (${reason}); HTTP file serving falls back to streaming`);
  process.exit(0);
}

// npm's own node-gyp: from the npm that runs this script, else next to the node binary (<prefix>/lib/node_modules).
function findNodeGyp() {
  const candidates = [];
  if (process.env.npm_execpath) candidates.push(path.dirname(path.dirname(process.env.npm_execpath)));
  const prefix = path.dirname(path.dirname(realpathSync(process.execPath)));
  candidates.push(path.join(prefix, 'lib', 'node_modules', 'npm'), '/usr/lib/node_modules/npm', '/usr/local/lib/node_modules/npm');
  for (const npmDir of candidates) {
    try {
      return createRequire(path.join(npmDir, 'package.json')).resolve('node-gyp/bin/node-gyp.js');
    } catch {
      // next candidate
    }
  }
  return undefined;
}

if (process.platform !== 'linux') fail(`platform ${process.platform} has no sendfile engine`);
const gyp = findNodeGyp();
if (!gyp) fail("npm's bundled node-gyp not found");

const args = [gyp, 'rebuild', '--directory', path.join(root, 'native', 'sendfile')];
const nodedir = process.env.npm_config_nodedir ?? (existsSync('/usr/include/node/node_api.h') ? '/usr' : undefined);
if (nodedir) args.push(`--nodedir=${nodedir}`);
const child = spawn(process.execPath, args, { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
child.on('error', (err) => fail(err.message));
child.on('exit', (code, signal) => {
  if (code === 0) {
    console.log('build:native: native/sendfile/build/Release/sendfile.node built');
    return;
  }
  fail(`node-gyp exited with ${signal ?? `code ${code}`}`);
});
