#!/usr/bin/env node
// npm run bench:boot — whole PXE boots (QEMU TCG) against rolecast and against dnsmasq + nginx serving
// the same iPXE script, kernel, initramfs and rootfs, in one run, inside one lab namespace.
// Machine w101 (bundled profiles; the role image is the busybox test image) boots BIOS (SeaBIOS + the
// e1000 iPXE ROM) and UEFI (OVMF PXE → an iPXE loader over TFTP); the time is from QEMU's start to the
// test image's "done" line on the serial console. The peer pair: dnsmasq -k --quiet-dhcp for DHCP (same
// reservation) and TFTP (Debian's iPXE loaders: undionly.kpxe, and ipxe.efi for UEFI as a typical setup
// names it, where rolecast's default is snponly.efi; BENCH_BOOT_PEER_EFI_LOADER=snponly.efi gives the
// peer the same), chaining iPXE to nginx, which serves the script and files rolecast rendered for w101
// (fetched from rolecast first, so the bytes are the same). BENCH_RUNS rounds (default 1: each boot is
// ~20-60 s of TCG); printed: rolecast time / peer time (< 1: rolecast faster).
import { spawnSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, cpSync } from 'node:fs';
import { loadavg } from 'node:os';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(fileURLToPath(import.meta.url), '../..');
if (process.getuid?.() !== 0) { console.error('bench:boot needs root (network namespaces, taps)'); process.exit(1); }
const { Lab, waitFor } = await import(join(ROOT, 'test/helpers/netns.ts'));
const { ARTIFACTS, biosPxeArgs, runQemu, uefiPxeArgs } = await import(join(ROOT, 'test/helpers/qemu.ts'));
const { buildInitramfs } = await import(join(ROOT, 'src/images/initramfs.ts'));
const { buildTestImage } = await import(join(ROOT, 'src/images/testimage.ts'));

const RUNS = Number(process.env.BENCH_RUNS ?? 1);
// BENCH_BOOT_FIRMWARE=bios (or uefi) boots one firmware only.
const FIRMWARES = (process.env.BENCH_BOOT_FIRMWARE ?? 'bios,uefi').split(',');
const SERVER = '10.0.0.1';
const MAC = '52:54:00:00:02:01';
const DONE = /rolecast: test image done/;
const FAILED = /rolecast: FAILED|Kernel panic/;
const dir = mkdtempSync(join(tmpdir(), 'rolecast-bench-boot-'));
const lab = new Lab('bboot');
const median = (a) => { const s = a.filter(Number.isFinite).sort((x, y) => x - y); return s.length ? s[Math.floor((s.length - 1) / 2)] : NaN; };

/**
 * Stages seen on the serial console, stamped with the host clock when they first show up (the log is
 * sampled every 50 ms): where a boot spends its time, per firmware and server.
 */
const STAGES = [
  ['firmware', /iPXE \(http|>>Start PXE|Start PXE over IPv4/],
  ['pxe dhcp', /Station IP address|Configuring \(net0/],
  ['nbp tftp', /NBP file downloaded/], // UEFI: the iPXE loader over TFTP
  ['ipxe start', /iPXE initialising devices/], // BIOS: the NIC's ROM is iPXE (stamped at 'firmware')
  ['ipxe configuring', /Configuring \(net0/],
  ['ipxe dhcp', /Filename: http/],
  ['script', /\.ipxe\.\.\. ok|\.ipxe : \d+ bytes/],
  ['kernel+initrd', /\/initrd\.\.\. ok|initrd\.\.\. ok/],
  ['kernel start', /Linux version/],
  ['/init', /rolecast: stage cmdline/],
  ['modules', /rolecast: stage modules/],
  ['initramfs dhcp', /rolecast: stage dhcp/],
  ['rootfs', /rolecast: stage unpacked/],
  ['booted', DONE],
];

function stampStages(logPath, t0, tracePath) {
  const seen = {};
  let traced = 0;
  const timer = setInterval(() => {
    let log;
    try { log = readFileSync(logPath, 'utf8'); } catch { return; }
    if (tracePath && log.length > traced) {
      // Every new piece of console output with the time it showed up (s from QEMU start).
      const at = ((performance.now() - t0) / 1000).toFixed(2);
      appendFileSync(tracePath, log.slice(traced).replace(/\r/g, '').split('\n').filter((l) => l.trim()).map((l) => `${at} ${l}\n`).join(''));
      traced = log.length;
    }
    for (const [name, re] of STAGES) if (seen[name] === undefined && re.test(log)) seen[name] = (performance.now() - t0) / 1000;
  }, 50);
  return { seen, stop: () => clearInterval(timer) };
}

const stageTimes = {};

async function boot(ns, name, firmware) {
  const args = firmware === 'bios' ? biosPxeArgs({ tap: 'tap0', mac: MAC }) : uefiPxeArgs({ tap: 'tap0', mac: MAC }, join(dir, `ovmf-${name}`));
  // BENCH_BOOT_PCAP=DIR: a packet capture of the lab bridge per boot (DIR/<name>.pcap), and the QEMU start time
  // (epoch ms) in DIR/<name>.t0, to line the packets up with the console stages.
  const pcap = process.env.BENCH_BOOT_PCAP ? resolve(process.env.BENCH_BOOT_PCAP) : undefined;
  let dump;
  if (pcap) {
    mkdirSync(pcap, { recursive: true });
    dump = lab.spawn(ns, 'tcpdump', ['-i', 'br0', '-n', '-U', '-s', '256', '-w', join(pcap, `${name}.pcap`)]);
    await new Promise((r) => setTimeout(r, 500));
    writeFileSync(join(pcap, `${name}.t0`), `${Date.now()}\n`);
  }
  const t = performance.now();
  const stamps = stampStages(join(ARTIFACTS, `bench-boot-${name}-${process.pid}.serial.log`), t, pcap && join(pcap, `${name}.trace`));
  const vm = await runQemu(`bench-boot-${name}`, args, { prefix: ['ip', 'netns', 'exec', ns], until: new RegExp(`${DONE.source}|${FAILED.source}`), timeoutMs: 300_000 });
  const s = (performance.now() - t) / 1000;
  stamps.stop();
  if (dump) { await new Promise((r) => setTimeout(r, 300)); lab.kill(dump); }
  if (!DONE.test(vm.log)) { console.log(`  ${name}: did not boot (serial log ${vm.logPath})`); return NaN; }
  stamps.seen.booted ??= s; // the VM may end between two samples
  const key = name.replace(/-\d+$/, '');
  (stageTimes[key] ??= []).push(stamps.seen);
  console.log(`  ${name}: ${s.toFixed(1)} s; ${STAGES.map(([n]) => stamps.seen[n] === undefined ? '' : `${n} ${stamps.seen[n].toFixed(1)}`).filter(Boolean).join(', ')}`);
  return s;
}

async function startRolecast(ns) {
  const cfg = join(dir, 'rolecast.yaml');
  writeFileSync(cfg, [`profilesDir: ${join(dir, 'profiles')}`, `dataDir: ${join(dir, 'data')}`, `imagesDir: ${join(dir, 'images')}`, `address: ${SERVER}`, 'logLevel: warn', 'user: root', ''].join('\n'));
  const p = lab.spawn(ns, process.execPath, [join(ROOT, 'bin/rolecast.js'), 'serve', '--config', cfg], { cwd: ROOT });
  let log = '';
  p.stdout?.on('data', (d) => { log += d; });
  p.stderr?.on('data', (d) => { log += d; });
  await waitFor(async () => (await lab.exec(ns, 'curl', ['-sf', '-o', '/dev/null', `http://${SERVER}:8080/healthz`])).code === 0, 60_000)
    .catch(() => { throw new Error(`rolecast did not start: ${log}`); });
  return p;
}

/** The peer's document root: what rolecast serves w101, fetched from it (script per firmware, images, rootfs). */
async function peerRoot(ns) {
  const www = join(dir, 'www');
  for (const sub of ['boot', 'images', 'rootfs']) mkdirSync(join(www, sub), { recursive: true });
  const get = async (path, file) => {
    const r = await lab.exec(ns, 'curl', ['-sf', '-o', join(www, file), `http://${SERVER}:8080${path}`], { timeoutMs: 60_000 });
    if (r.code !== 0) throw new Error(`GET ${path}: ${r.stderr}`);
  };
  await get(`/boot/${MAC}.ipxe?arch=0`, 'boot/bios.ipxe');
  await get(`/boot/${MAC}.ipxe?arch=7`, 'boot/efi.ipxe');
  await get('/images/kernel', 'images/kernel');
  await get('/images/initrd', 'images/initrd');
  // The rootfs holds w101's secrets: rolecast gives it only to w101's own address, so borrow that
  // address for the fetch (and give it back before the VM boots).
  spawnSync('ip', ['-n', ns, 'addr', 'add', '10.0.0.101/24', 'dev', 'br0']);
  const r = await lab.exec(ns, 'curl', ['-sf', '--interface', '10.0.0.101', '-o', join(www, 'rootfs', `${MAC}.tar`), `http://${SERVER}:8080/rootfs/${MAC}.tar`], { timeoutMs: 60_000 });
  spawnSync('ip', ['-n', ns, 'addr', 'del', '10.0.0.101/24', 'dev', 'br0']);
  if (r.code !== 0) throw new Error(`GET /rootfs/${MAC}.tar: ${r.stderr}`);
  spawnSync('chmod', ['-R', 'a+rX', dir]);
  return www;
}

function startPeers(ns, www) {
  const conf = join(dir, 'nginx.conf');
  writeFileSync(conf, `daemon off; worker_processes 2; pid ${join(dir, 'nginx.pid')}; error_log ${join(dir, 'nginx.err')};
events { worker_connections 1024; }
http { access_log off; sendfile on; tcp_nopush on; default_type application/octet-stream;
  server { listen ${SERVER}:8080; root ${www}; } }
`);
  const nginx = lab.spawn(ns, 'nginx', ['-c', conf, '-p', dir]);
  const dnsmasq = lab.spawn(ns, 'dnsmasq', ['-k', '--quiet-dhcp', '--conf-file=/dev/null', '--port=0', '--interface=br0', '--bind-interfaces', '--user=root',
    `--dhcp-range=${SERVER.replace(/\.1$/, '.100')},${SERVER.replace(/\.1$/, '.150')},255.255.255.0,10m`, `--dhcp-host=${MAC},10.0.0.101`, '--leasefile-ro',
    '--enable-tftp', '--tftp-root=/usr/lib/ipxe', '--dhcp-match=set:ipxe,175', '--dhcp-match=set:efi,option:client-arch,7',
    '--dhcp-boot=tag:!ipxe,tag:!efi,undionly.kpxe', `--dhcp-boot=tag:!ipxe,tag:efi,${process.env.BENCH_BOOT_PEER_EFI_LOADER ?? 'ipxe.efi'}`,
    `--dhcp-boot=tag:ipxe,tag:!efi,http://${SERVER}:8080/boot/bios.ipxe`, `--dhcp-boot=tag:ipxe,tag:efi,http://${SERVER}:8080/boot/efi.ipxe`]);
  return [nginx, dnsmasq];
}

try {
  const build = join(dir, 'images', 'build');
  await buildInitramfs({ out: build });
  await buildTestImage(build);
  for (const role of ['lb', 'web']) symlinkSync('test.tar', join(build, 'rootfs', `${role}.tar`));
  cpSync(join(ROOT, 'profiles'), join(dir, 'profiles'), { recursive: true });
  // BENCH_BOOT_CMDLINE: words added to the kernel command line of w101's role (web; test too) (e.g. rolecast.modules=all
  // to time the initramfs loading every module, as it did before modalias matching).
  for (const role of ['test', 'web']) {
    const file = join(dir, 'profiles', 'roles', `${role}.yaml`);
    if (process.env.BENCH_BOOT_CMDLINE) writeFileSync(file, readFileSync(file, 'utf8').replace(/^cmdline: (.*)$/m, (_, c) => `cmdline: ${c} ${process.env.BENCH_BOOT_CMDLINE}`));
  }
  // BENCH_BOOT_EFI_LOADER / BENCH_BOOT_PEER_EFI_LOADER: the UEFI x64 loader each side hands OVMF (a file in
  // /usr/lib/ipxe; default: each side's own default).
  if (process.env.BENCH_BOOT_EFI_LOADER) {
    const file = join(dir, 'profiles', 'rolecast.yaml');
    writeFileSync(file, readFileSync(file, 'utf8').replace(/^site:\n/m, `site:\n  loaders: { uefi-x64: ${process.env.BENCH_BOOT_EFI_LOADER} }\n`));
  }
  mkdirSync(join(dir, 'data'));
  const ns = lab.ns('boot');
  lab.bridge(ns, 'br0');
  lab.addr(ns, 'br0', `${SERVER}/24`);
  lab.tap(ns, 'br0', 'tap0');
  const times = { 'rolecast bios': [], 'rolecast uefi': [], 'peer bios': [], 'peer uefi': [] };
  let www;
  for (let run = 0; run < RUNS; run++) {
    const rc = await startRolecast(ns);
    www ??= await peerRoot(ns);
    for (const fw of FIRMWARES) times[`rolecast ${fw}`].push(await boot(ns, `rolecast-${fw}-${run}`, fw));
    lab.kill(rc);
    await waitFor(() => rc.exitCode !== null || rc.signalCode !== null, 15_000);
    const peers = startPeers(ns, www);
    await new Promise((r) => setTimeout(r, 1500));
    for (const fw of FIRMWARES) times[`peer ${fw}`].push(await boot(ns, `peer-${fw}-${run}`, fw));
    for (const p of peers) lab.kill(p);
    await new Promise((r) => setTimeout(r, 1000));
    console.log(`  run ${run + 1} (load ${loadavg()[0].toFixed(1)}): ${Object.entries(times).filter(([, v]) => v.length > run).map(([k, v]) => `${k} ${v[run].toFixed(1)} s`).join(', ')}`);
  }
  console.log(`load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  for (const [key, runs] of Object.entries(stageTimes)) {
    console.log(`  ${key} stage medians (s from QEMU start): ${STAGES.map(([n]) => [n, median(runs.map((r) => r[n] ?? NaN))]).filter(([, v]) => Number.isFinite(v)).map(([n, v]) => `${n} ${v.toFixed(1)}`).join(', ')}`);
  }
  for (const fw of FIRMWARES) {
    const r = median(times[`rolecast ${fw}`]);
    const p = median(times[`peer ${fw}`]);
    // Each run's pair boots back to back under about the same load: the median of the per-run ratios
    // is the steadier figure when the load drifts between runs.
    const paired = median(times[`rolecast ${fw}`].map((x, i) => x / times[`peer ${fw}`][i]));
    console.log(`${fw.toUpperCase()} PXE → booted (median of ${RUNS}): rolecast ${r.toFixed(1)} s, dnsmasq+nginx ${p.toFixed(1)} s; rolecast/peer time ${(r / p).toFixed(2)}, median of the per-run ratios ${paired.toFixed(2)} (target <= 0.6)`);
  }
} finally {
  await lab.cleanup();
  rmSync(dir, { recursive: true, force: true });
}
