/**
 * Startup failures an operator can act on: a listener that cannot bind becomes an error naming the cause and
 * the fix — the port's holder (PID and name, from /proc) when it is in use, the capability when it is
 * privileged. The caller closes whatever had started, so nothing is left half-running.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { RolecastError } from './errors.js';

export type Transport = 'tcp' | 'udp';

/** Socket inodes bound to `port` (any address) in /proc/net/{tcp,udp}{,6}; listening sockets only for TCP. */
function socketInodes(proto: Transport, port: number): Set<string> {
  const inodes = new Set<string>();
  for (const file of [`/proc/net/${proto}`, `/proc/net/${proto}6`]) {
    let text = '';
    try { text = readFileSync(file, 'utf8'); } catch { continue; }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      const local = f[1]?.split(':')[1];
      // TCP state 0A = LISTEN (include/net/tcp_states.h); UDP sockets have no listen state.
      if (local && parseInt(local, 16) === port && (proto === 'udp' || f[3] === '0A') && f[9]) inodes.add(f[9]);
    }
  }
  return inodes;
}

/** "PID 1234 (nginx)" for the process holding the port, when /proc lets us see it. */
export function portHolder(proto: Transport, port: number): string | undefined {
  const inodes = socketInodes(proto, port);
  if (inodes.size === 0) return undefined;
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    let fds: string[];
    try { fds = readdirSync(`/proc/${pid}/fd`); } catch { continue; }
    for (const fd of fds) {
      let target = '';
      try { target = readlinkSync(`/proc/${pid}/fd/${fd}`); } catch { continue; }
      const m = /^socket:\[(\d+)\]$/.exec(target);
      if (m && inodes.has(m[1]!)) {
        let comm = '?';
        try { comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim(); } catch { /* gone meanwhile */ }
        return `PID ${pid} (${comm})`;
      }
    }
  }
  return undefined;
}

/** A bind error as the operator should read it. Other errors pass through unchanged. */
export function explainListenError(err: unknown, what: string, proto: Transport, host: string, port: number): unknown {
  const code = (err as { code?: string }).code;
  const at = `${proto.toUpperCase()} ${host}:${port}`;
  if (code === 'EADDRINUSE') {
    const holder = portHolder(proto, port);
    return new RolecastError('E_PORT_IN_USE', `${what}: ${at} is in use${holder ? ` by ${holder}` : ' (holder not visible: another user\'s process or namespace)'}: stop it, or give rolecast another port (${what === 'HTTP' ? '--http-port or http.port' : `${what.toLowerCase()}.port`} in the config)`, { cause: err });
  }
  if (code === 'EACCES' || code === 'EPERM') {
    return new RolecastError('E_PORT_DENIED', `${what}: binding ${at} needs CAP_NET_BIND_SERVICE (ports below 1024): run as root (rolecast drops to its service user after binding), through the systemd unit (AmbientCapabilities=CAP_NET_BIND_SERVICE), or use a port >= 1024`, { cause: err });
  }
  if (code === 'EADDRNOTAVAIL') {
    return new RolecastError('E_ADDRESS_NOT_HERE', `${what}: ${host} is not an address of this host (ip -br addr lists them): fix ${what.toLowerCase()}.bind/host or --address`, { cause: err });
  }
  return err;
}

/** Run a listener's start, turning bind errors into ones that name cause and fix. */
export async function listening<T>(what: string, proto: Transport, host: string, port: number, start: () => Promise<T>): Promise<T> {
  try {
    return await start();
  } catch (err) {
    throw explainListenError(err, what, proto, host, port);
  }
}
