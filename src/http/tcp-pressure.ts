/**
 * The kernel's TCP memory pressure flag, for the gate on large sends (src/http/bulk.ts, http.bulkWhen).
 *
 * Linux counts the memory all TCP sockets hold together (send and receive queues). Past the second value
 * of net.ipv4.tcp_mem it enters "memory pressure" and stays there until the total falls below the first:
 * meanwhile buffers stop growing, receive windows are clamped, and segments arriving on a full socket are
 * pruned and dropped. In a boot storm (300 downloads into clients that read slower than the server sends)
 * the box hovered at that line for 17 s, the flag going on and off; the drops came back as retransmission
 * timeouts, which idle a download for 200 ms and more each. 200 downloads on loopback by fast readers
 * stayed at 7% of the first value and never got near it (both in CHANGELOG.md).
 *
 * The flag is read from /proc/net/protocols (the TCP row's "press" column: yes or no). The flag and the
 * memory it tracks are global: a process in any network namespace sees the same. net.ipv4.tcp_mem itself
 * is readable only in the first namespace, so the flag, not a comparison of figures, is what is read.
 */
import { readFileSync } from 'node:fs';

export const PROTOCOLS_FILE = '/proc/net/protocols';

/** The TCP row's "press" column of /proc/net/protocols: true for yes, false for no; undefined without one. */
export function parseTcpPressure(text: string): boolean | undefined {
  const lines = text.split('\n');
  const column = (lines[0] ?? '').trim().split(/\s+/).indexOf('press');
  if (column < 0) return undefined;
  for (const line of lines) {
    const cells = line.trim().split(/\s+/);
    if (cells[0] !== 'TCP') continue;
    const v = cells[column];
    return v === 'yes' ? true : v === 'no' ? false : undefined;
  }
  return undefined;
}

export interface TcpPressureOptions {
  file?: string;
  /** A reading is reused for this long (ms; default 200): the gate asks on every large send. */
  maxAgeMs?: number;
  now?: () => number;
  /** Told once when the file cannot be read or has no TCP pressure column: pressure is then never seen. */
  onUnavailable?: (why: string) => void;
}

/** Whether the kernel reports TCP memory pressure now (read at most every maxAgeMs). */
export type TcpPressure = () => boolean;

export function tcpPressureProbe(opts: TcpPressureOptions = {}): TcpPressure {
  const file = opts.file ?? PROTOCOLS_FILE;
  const maxAge = opts.maxAgeMs ?? 200;
  const now = opts.now ?? (() => performance.now());
  let readAt = -Infinity;
  let last = false;
  let unavailable = false;
  return () => {
    if (unavailable) return false;
    const t = now();
    if (t - readAt < maxAge) return last;
    readAt = t;
    let why: string | undefined;
    try {
      const v = parseTcpPressure(readFileSync(file, 'latin1'));
      if (v === undefined) why = `${file} has no TCP row with a "press" column`;
      else last = v;
    } catch (err) {
      why = `cannot read ${file}: ${(err as Error).message}`;
    }
    if (why !== undefined) {
      unavailable = true;
      last = false;
      opts.onUnavailable?.(why);
    }
    return last;
  };
}
