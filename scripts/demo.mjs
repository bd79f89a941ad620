#!/usr/bin/env node
// npm run demo (root): build what the boot needs, make a lab network namespace, start rolecast on the
// bundled profiles in it, PXE-boot two QEMU VMs — lb1 (BIOS, iPXE NIC ROM) and w101 (UEFI, OVMF) — and
// show what each machine did, stage by stage, from rolecast's timeline and the VMs' consoles.
// By default the lb and web bases are the small busybox test image (the generated files — keepalived,
// network, hostname — are the real ones); `npm run demo -- --real` builds Debian role images with
// mmdebstrap first (needs the Debian mirror, a few minutes).
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(fileURLToPath(import.meta.url), '../..');
const real = process.argv.includes('--real');
if (process.getuid?.() !== 0) { console.error('demo: run as root (network namespace, tap devices)'); process.exit(1); }
const NS = `rcdemo${process.pid}`;
const dir = mkdtempSync(join(tmpdir(), 'rolecast-demo-'));
const rc = (...a) => { const r = spawnSync(process.execPath, [join(ROOT, 'bin/rolecast.js'), ...a], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }); if (r.status !== 0) throw new Error(`rolecast ${a.join(' ')} failed`); return r.stdout; };
const ip = (...a) => { const r = spawnSync('ip', a, { encoding: 'utf8' }); if (r.status !== 0) throw new Error(`ip ${a.join(' ')}: ${r.stderr}`); };
const procs = [];
const say = (s) => console.log(`\n== ${s}`);

try {
  say('building images (common initramfs + kernel, busybox test image)');
  const out = join(dir, 'images/build');
  rc('images', 'build', 'initramfs', '--out', out);
  rc('images', 'build', 'test', '--out', out);
  if (real) { rc('images', 'build', 'lb', '--out', out); rc('images', 'build', 'web', '--out', out); }
  else for (const r of ['lb', 'web']) copyFileSync(join(out, 'rootfs/test.tar'), join(out, `rootfs/${r}.tar`));
  cpSync(join(ROOT, 'profiles'), join(dir, 'profiles'), { recursive: true });
  writeFileSync(join(dir, 'rc.yaml'), `profilesDir: ${dir}/profiles\ndataDir: ${dir}/data\nimagesDir: ${dir}/images\naddress: 10.0.0.1\n`);

  say(`lab: namespace ${NS}, bridge br0 10.0.0.1/24, taps for two VMs`);
  ip('netns', 'add', NS);
  ip('-n', NS, 'link', 'set', 'lo', 'up');
  ip('-n', NS, 'link', 'add', 'br0', 'type', 'bridge');
  ip('-n', NS, 'addr', 'add', '10.0.0.1/24', 'dev', 'br0');
  ip('-n', NS, 'link', 'set', 'br0', 'up');
  for (const t of ['tap0', 'tap1', 'tap2', 'tap3']) { ip('-n', NS, 'tuntap', 'add', 'dev', t, 'mode', 'tap'); ip('-n', NS, 'link', 'set', t, 'master', 'br0', 'up'); }

  say('rolecast serve (DHCP + TFTP + HTTP) on the bundled profiles');
  const server = spawn('ip', ['netns', 'exec', NS, process.execPath, join(ROOT, 'bin/rolecast.js'), 'serve', '--config', join(dir, 'rc.yaml')], { stdio: ['ignore', 'pipe', 'inherit'] });
  procs.push(server);
  let log = '';
  server.stdout.on('data', (d) => { log += d; });
  for (let i = 0; i < 100 && !log.includes('rolecast serving'); i++) await new Promise((r) => setTimeout(r, 100));

  const vm = (name, args) => {
    const serial = join(dir, `${name}.serial.log`);
    const p = spawn('ip', ['netns', 'exec', NS, 'qemu-system-x86_64', '-accel', 'tcg', '-nographic', '-monitor', 'none', '-serial', `file:${serial}`, '-no-reboot', '-m', '512', ...args], { stdio: 'ignore' });
    procs.push(p);
    return { p, serial };
  };
  const nic = (tap, id, mac, model, rom) => ['-netdev', `tap,id=${id},ifname=${tap},script=no,downscript=no`, '-device', `${model},netdev=${id},mac=${mac}${rom === undefined ? '' : `,romfile=${rom}`}`];
  copyFileSync('/usr/share/OVMF/OVMF_VARS_4M.fd', join(dir, 'vars.fd'));
  say('powering on lb1 (BIOS, two NICs for its bond) and w101 (UEFI): about a minute under TCG');
  const lb1 = vm('lb1', [...nic('tap0', 'n0', '52:54:00:00:01:01', 'e1000'), ...nic('tap1', 'n1', '52:54:00:00:11:01', 'e1000', ''), '-boot', 'n']);
  const w101 = vm('w101', ['-machine', 'q35', '-drive', 'if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd', '-drive', `if=pflash,format=raw,file=${join(dir, 'vars.fd')}`,
    ...nic('tap2', 'n0', '52:54:00:00:02:01', 'virtio-net-pci', ''), ...nic('tap3', 'n1', '52:54:00:00:12:01', 'virtio-net-pci', ''), '-boot', 'n']);
  const done = (v) => existsSync(v.serial) && /rolecast: (test image done|FAILED)|login:/.test(readFileSync(v.serial, 'utf8'));
  for (let i = 0; i < 240 && !(done(lb1) && done(w101)); i++) await new Promise((r) => setTimeout(r, 1000));

  for (const [host, v] of [['lb1', lb1], ['w101', w101]]) {
    say(`${host}: rolecast's timeline`);
    console.log(rc('events', host, '--data', join(dir, 'data'), '--profiles', join(dir, 'profiles')));
    say(`${host}: console`);
    console.log(readFileSync(v.serial, 'utf8').split(/\r?\n/).filter((l) => l.startsWith('rolecast: ')).join('\n'));
  }
  say('lb1: the keepalived.conf rolecast generated for it');
  console.log(rc('render', 'lb1', '--file', '/etc/keepalived/keepalived.conf', '--profiles', join(dir, 'profiles')));
} finally {
  for (const p of procs) { try { p.kill('SIGTERM'); } catch { /* gone */ } }
  await new Promise((r) => setTimeout(r, 500));
  spawnSync('ip', ['netns', 'delete', NS]);
  rmSync(dir, { recursive: true, force: true });
}
