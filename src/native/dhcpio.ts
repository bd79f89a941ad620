// The batched datagram addon (native/dhcpio/dhcpio.c): DHCP's sockets drained with recvmmsg(2) and written with
// sendmmsg(2) on the event loop's thread. Optional: without it (not built, not Linux) DHCP uses node:dgram.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { addonFile } from './addon.js';

/** An open socket of the addon (opaque). */
export type DhcpIoHandle = { readonly __dhcpio: unique symbol };

export interface DhcpIoBinding {
  /** A UDP socket bound to address:port (SO_REUSEADDR; SO_BROADCAST when asked); throws an Error with `errno`. */
  open(address: string, port: number, rcvbuf: number, broadcast: boolean): { handle: DhcpIoHandle; port: number };
  /**
   * Poll it on the event loop: each wake-up drains up to meta.length / 3 datagrams into recv (one per slot) and
   * calls onBatch(count); datagram i: meta[3i] length (> slot: truncated), meta[3i+1] source IPv4, meta[3i+2] port.
   */
  start(h: DhcpIoHandle, recv: Buffer, meta: Uint32Array, slot: number, onBatch: (count: number) => void): void;
  /** Send `count` datagrams: meta[4i] offset in buf, meta[4i+1] length, meta[4i+2] IPv4, meta[4i+3] port; failures. */
  send(h: DhcpIoHandle, buf: Buffer, meta: Uint32Array, count: number): number;
  /** errno of the last datagram that could not be sent (0: none). */
  lastSendError(h: DhcpIoHandle): number;
  close(h: DhcpIoHandle): void;
}

let cached: { binding: DhcpIoBinding } | { unavailable: string } | undefined;

/** The addon, or why it cannot be used. */
export function dhcpIo(): { binding: DhcpIoBinding } | { unavailable: string } {
  if (cached) return cached;
  const file = addonFile('dhcpio');
  if (process.platform !== 'linux') cached = { unavailable: `batched datagram I/O is Linux-only (platform ${process.platform})` };
  else if (!existsSync(file)) cached = { unavailable: `native addon not built: ${file} missing (run npm run build:native)` };
  else {
    try {
      cached = { binding: createRequire(import.meta.url)(file) as DhcpIoBinding };
    } catch (e) {
      cached = { unavailable: `native addon failed to load: ${(e as Error).message}` };
    }
  }
  return cached;
}
