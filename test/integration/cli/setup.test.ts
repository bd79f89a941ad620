/**
 * scripts/setup.sh on a machine without Node 20: it stops before installing anything and says exactly how to
 * get Node 20 where the distribution has none (Debian 12: nodejs 18). `node` and `apt-cache` are replaced by
 * scripts that answer as Debian 12's would; nothing is installed.
 */
import { afterAll, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './helpers.js';

const bin = mkdtempSync(join(tmpdir(), 'rolecast-setup-'));
afterAll(() => rmSync(bin, { recursive: true, force: true }));

function fake(name: string, body: string): void {
  writeFileSync(join(bin, name), `#!/bin/sh\n${body}\n`);
  chmodSync(join(bin, name), 0o755);
}

it('without Node >= 20 and none in the distribution, setup says how to get it and exits 1', () => {
  fake('node', 'case "$*" in *versions.node*) echo 18;; *--version*) echo v18.19.0;; *) exit 1;; esac');
  fake('apt-cache', 'echo "nodejs:"; echo "  Installed: 18.19.0+dfsg-6~deb12u2"; echo "  Candidate: 18.19.0+dfsg-6~deb12u2"');
  fake('apt-get', 'echo "apt-get must not run" >&2; exit 99');
  fake('npm', 'echo "npm must not run" >&2; exit 99');
  const r = spawnSync('bash', [join(ROOT, 'scripts/setup.sh'), 'serve'], { encoding: 'utf8', env: { ...process.env, PATH: `${bin}:${process.env.PATH}` } });
  expect(r.status, r.stderr).toBe(1);
  expect(r.stderr).toMatch(/rolecast needs Node\.js 20 or newer; this machine has v18\.19\.0/);
  expect(r.stderr).toMatch(/own nodejs package is 18/);
  expect(r.stderr).toMatch(/setup_20\.x/);
  expect(r.stderr).toMatch(/apt-get install -y nodejs/);
  expect(r.stderr).not.toMatch(/must not run/);
});

it('an unknown mode is a usage error (exit 2) before anything is installed', () => {
  const r = spawnSync('bash', [join(ROOT, 'scripts/setup.sh'), 'nope'], { encoding: 'utf8' });
  expect(r.status).toBe(2);
  expect(r.stderr).toMatch(/usage: setup\.sh test\|serve/);
});
