#!/usr/bin/env node
// npm run bench[:scale|:dhcp|:tftp|:http|:boot|:storm]: runs rolecast side by side with its peers (dnsmasq, tftpd-hpa, nginx)
// in the same run and prints ratios. Benchmarks are not tests: they report, they do not gate CI.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const here = dirname(fileURLToPath(import.meta.url));
const which = process.argv[2] ?? 'all';
const all = ['scale', 'dhcp', 'tftp', 'http', 'boot', 'storm'];
const chosen = which === 'all' ? all : [which];
let failed = 0;
for (const name of chosen) {
  const script = join(here, `bench-${name}.mjs`);
  if (!existsSync(script)) {
    console.error(`bench ${name}: ${script} is missing`);
    failed++;
    continue;
  }
  console.log(`\n=== bench ${name} ===`);
  const r = spawnSync(process.execPath, ['--import', 'tsx', script, ...process.argv.slice(3)], { stdio: 'inherit' });
  if (r.status !== 0) failed++;
}
process.exitCode = failed ? 1 : 0;
