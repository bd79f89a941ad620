/**
 * QEMU under TCG (this machine's /dev/kvm cannot run firmware): start a VM, serial console to a log
 * file kept as evidence under test-artifacts/, end it by PID on timeout or once a marker shows up.
 * Helpers build the firmware and NIC arguments for the two boot paths the e2e tests cover:
 * - BIOS: SeaBIOS + the NIC's option ROM, which on QEMU is iPXE (e1000 or virtio-net, default romfile);
 * - UEFI: q35 + OVMF (pflash code + a fresh copy of the vars) and virtio-net with `romfile=` empty,
 *   so OVMF's own PXE driver is used, as on a real UEFI box.
 */
import { spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const ARTIFACTS = resolve(import.meta.dirname, '../../test-artifacts');
export const OVMF_CODE = '/usr/share/OVMF/OVMF_CODE_4M.fd';
export const OVMF_VARS = '/usr/share/OVMF/OVMF_VARS_4M.fd';

export interface VmResult {
  code: number | null;
  timedOut: boolean;
  /** Ended by us because `until` matched. */
  matched: boolean;
  log: string;
  logPath: string;
}

export interface RunQemuOptions {
  timeoutMs?: number;
  /** Stop the VM (by PID) once the serial log matches. */
  until?: RegExp;
  /** Command prefix, e.g. ['ip', 'netns', 'exec', ns] to run the VM inside a lab namespace. */
  prefix?: string[];
}

/** Common base: TCG, no display, serial to the log file, a reset ends qemu (-no-reboot), 512 MiB. */
export function baseArgs(logPath: string): string[] {
  return ['-accel', 'tcg', '-nographic', '-monitor', 'none', '-serial', `file:${logPath}`, '-no-reboot', '-m', '512'];
}

export function runQemu(name: string, args: string[], opts: RunQemuOptions = {}): Promise<VmResult> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const logPath = join(ARTIFACTS, `${name}-${process.pid}.serial.log`);
  const cmd = [...(opts.prefix ?? []), 'qemu-system-x86_64', ...baseArgs(logPath), ...args];
  return new Promise((resolvePromise) => {
    const child = spawn(cmd[0]!, cmd.slice(1), { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => { stderr += d.toString(); });
    let timedOut = false;
    let matched = false;
    // `ip netns exec` execs qemu, so the PID (and its process group) is the VM's.
    const kill = () => { try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* gone */ } };
    const timer = setTimeout(() => { timedOut = true; kill(); }, opts.timeoutMs ?? 120_000);
    const poll = opts.until ? setInterval(() => {
      if (existsSync(logPath) && opts.until!.test(readFileSync(logPath, 'utf8'))) { matched = true; kill(); }
    }, 250) : undefined;
    child.on('close', (code) => {
      clearTimeout(timer);
      if (poll) clearInterval(poll);
      const log = existsSync(logPath) ? readFileSync(logPath, 'utf8') : '';
      resolvePromise({ code, timedOut, matched, log: stderr ? `${log}\n[qemu stderr] ${stderr}` : log, logPath });
    });
  });
}

export interface NicOptions {
  /** A tap device inside the namespace the VM runs in. */
  tap: string;
  mac: string;
  model?: 'e1000' | 'virtio-net-pci';
  /** undefined: the model's default ROM (QEMU's iPXE); '': no ROM (firmware's own driver). */
  romfile?: string;
}

export function nicArgs(nic: NicOptions): string[] {
  const rom = nic.romfile === undefined ? '' : `,romfile=${nic.romfile}`;
  return [
    '-netdev', `tap,id=n0,ifname=${nic.tap},script=no,downscript=no`,
    '-device', `${nic.model ?? 'virtio-net-pci'},netdev=n0,mac=${nic.mac}${rom}`,
  ];
}

/** SeaBIOS network boot through the NIC's iPXE option ROM. */
export function biosPxeArgs(nic: Omit<NicOptions, 'romfile'>): string[] {
  return [...nicArgs({ model: 'e1000', ...nic }), '-boot', 'n'];
}

/** OVMF network boot with OVMF's own PXE (virtio-net without ROM); vars copied fresh into `dir`. */
export function uefiPxeArgs(nic: Omit<NicOptions, 'romfile' | 'model'>, dir: string): string[] {
  mkdirSync(dir, { recursive: true });
  const vars = join(dir, 'OVMF_VARS.fd');
  copyFileSync(OVMF_VARS, vars);
  return [
    '-machine', 'q35',
    '-drive', `if=pflash,format=raw,readonly=on,file=${OVMF_CODE}`,
    '-drive', `if=pflash,format=raw,file=${vars}`,
    ...nicArgs({ ...nic, model: 'virtio-net-pci', romfile: '' }),
    '-boot', 'n',
  ];
}

/** Direct kernel boot (no firmware network stage): kernel + initramfs + command line. */
export function directBootArgs(kernel: string, initrd: string, append: string): string[] {
  return ['-kernel', kernel, '-initrd', initrd, '-append', append];
}

/** Lines of the serial log carrying our markers ("rolecast: ..."), for assertions and messages. */
export function markers(log: string): string[] {
  // The kernel's console messages can land inside one of our lines ("...action=boot[    1.98] tsc: ..."):
  // cut lines at kernel timestamps and keep the part from "rolecast: " on.
  return log.split(/\r?\n/)
    .flatMap((l) => l.split(/\[\s*\d+\.\d{6}\]/))
    .flatMap((piece) => {
      const at = piece.indexOf('rolecast: ');
      return at < 0 ? [] : [piece.slice(at).trim()];
    });
}
