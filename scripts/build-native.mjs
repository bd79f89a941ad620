#!/usr/bin/env node
// Builds the native addons (native/sendfile: HTTP's sendfile engine; native/tftp: TFTP's data engine) with npm's bundled node-gyp, against the installed Node's
// headers (npm is configured with nodedir=/usr, so nothing is downloaded). A failed build is a warning: the HTTP
// server falls back to streaming files through user space. Under CI=true it is an error.
import { spawn } from 'node:child_process';
import { existsSync, realpathSync, statSync } from 'node:fs';
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
  console.warn(`build:native: WARNING: native addon not built (${reason}); HTTP file serving falls back to streaming, TFTP to its JS sessions`);
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

const nodedir = process.env.npm_config_nodedir ?? (existsSync('/usr/include/node/node_api.h') ? '/usr' : undefined);

// One addon per directory under native/: the sendfile engine (HTTP), the TFTP data engine, neigh (the ARP
// entry DHCP installs before a unicast reply) and dhcpio (DHCP's batched datagram I/O).
function build(name) {
  const dir = path.join(root, 'native', name);
  // Up to date: the addon is newer than its sources (and the node binary it was built against).
  const addon = path.join(dir, 'build', 'Release', `${name}.node`);
  // native/common/engine.h: the engine scaffolding sendfile and tftp include.
  const shared = name === 'neigh' ? [] : ['../common/engine.h'];
  const sources = [`${name}.c`, 'binding.gyp', ...shared].map((f) => path.join(dir, f));
  if (existsSync(addon) && [...sources, realpathSync(process.execPath)].every((f) => statSync(f).mtimeMs <= statSync(addon).mtimeMs)) {
    console.log(`build:native: native/${name} is up to date`);
    return Promise.resolve();
  }
  const args = [gyp, 'rebuild', '--directory', dir];
  if (nodedir) args.push(`--nodedir=${nodedir}`);
  return new Promise((resolve) => {
    // node-gyp is chatty: keep its output and show it only when the build fails.
    const child = spawn(process.execPath, [...args, '--loglevel=warn'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => { output += d; });
    child.stderr.on('data', (d) => { output += d; });
    child.on('error', (err) => fail(err.message));
    child.on('exit', (code, signal) => {
      if (code === 0) {
        console.log(`build:native: native/${name}/build/Release/${name}.node built`);
        resolve();
        return;
      }
      process.stderr.write(output.split('\n').slice(-60).join('\n'));
      fail(`node-gyp (${name}) exited with ${signal ?? `code ${code}`}`);
    });
  });
}

// In turn: node-gyp's own temp files are per directory, but two builds at once double the peak load.
await build('sendfile');
await build('tftp');
await build('neigh');
await build('dhcpio');
