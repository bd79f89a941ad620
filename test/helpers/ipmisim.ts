/**
 * Debian's OpenIPMI `ipmi_sim` as a real IPMI BMC for tests (ipmi_lan(5)): RMCP+ on `addr port` with
 * one admin user, and optionally Serial over LAN onto a TCP serial port (`sol "tcp:H:P"`: ipmi_sim
 * connects to it when SOL is activated and keeps retrying while nobody listens — a QEMU serial
 * chardev in server mode, or a test's socket), the VM interface QEMU's ipmi-bmc-extern speaks to, and a
 * chassis_control program that switches the machine's power.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import type { Lab } from './netns.js';

export interface IpmiSimOptions {
  dir: string;
  addr: string;
  port?: number;
  user?: string;
  password: string;
  /** "tcp:127.0.0.1:9003": the machine's serial port for SOL. */
  sol?: string;
  /** host:port ipmi_sim listens on for QEMU's ipmi-bmc-extern (codec VM). */
  vmSerial?: string;
  /** Program ipmi_sim runs to get/set power, reset and boot device. */
  chassisControl?: string;
}

export function writeIpmiSimConfig(o: IpmiSimOptions): { lanConf: string; cmds: string; state: string } {
  const auths = ['callback', 'user', 'operator', 'admin'].map((p) => `    allowed_auths_${p} none md2 md5 straight`);
  const lines = [
    'name "rolecastbmc"', 'set_working_mc 0x20', '  startlan 1', `    addr ${o.addr} ${o.port ?? 623}`, '    priv_limit admin',
    ...auths, '    guid a123456789abcdefa123456789abcdef', '  endlan',
    ...(o.vmSerial ? [`  serial 15 ${o.vmSerial.replace(':', ' ')} codec VM`] : []),
    ...(o.sol ? [`  sol "${o.sol}" 115200`] : []),
    ...(o.chassisControl ? [`  chassis_control "${o.chassisControl} 0x20"`] : []),
    `  user 2 true "${o.user ?? 'admin'}" "${o.password}" admin 10 none md2 md5 straight`, '',
  ];
  const lanConf = join(o.dir, 'lan.conf');
  const cmds = join(o.dir, 'emu.cmds');
  writeFileSync(lanConf, lines.join('\n'));
  writeFileSync(cmds, 'mc_setbmc 0x20\nmc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr\nmc_enable 0x20\n');
  return { lanConf, cmds, state: join(o.dir, 'sim-state') };
}

/** ipmi_sim on this host (127.0.0.0/8 addresses), or inside a lab namespace when `lab` and `ns` are given. */
export function startIpmiSim(o: IpmiSimOptions, lab?: { lab: Lab; ns: string }): ChildProcess {
  const c = writeIpmiSimConfig(o);
  const args = ['-c', c.lanConf, '-f', c.cmds, '-n', '-s', c.state];
  if (lab) return lab.lab.spawn(lab.ns, 'ipmi_sim', args);
  return spawn('ipmi_sim', args, { stdio: ['ignore', 'ignore', 'ignore'] });
}
