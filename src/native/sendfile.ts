// Zero-copy file → socket transfers through the native sendfile engine (native/sendfile/sendfile.c): one engine
// thread per process loops sendfile(2) on non-blocking sockets with its own epoll, so file bytes never pass through
// JS buffers and the JS thread only sees one completion per transfer.
//
// Use it only once Node has nothing left in its own write queue for that socket, or bytes would interleave: write
// the HTTP head with `socket.write(head, cb)` and call send() in the callback (or check `socket.writableLength`
// is 0). While a send is pending, write nothing else to the socket. The engine holds a dup of the socket fd until
// the transfer ends, so the connection stays open that long even if Node closes its handle: abort the send (signal)
// when the socket closes or errors, and give a timeoutMs.
//
// The file descriptor may be closed by the caller once send() has returned its promise (the engine has its own dup).
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { addonFile } from './addon.js';
import type { Socket } from 'node:net';
import { availableParallelism, constants } from 'node:os';
import { getSystemErrorName } from 'node:util';

export interface SendOptions {
  /** Inactivity timeout: no byte sent for this long ends the transfer with code 'ETIMEDOUT'. */
  timeoutMs?: number;
  /** Aborting ends the transfer with code 'ECANCELED'. */
  signal?: AbortSignal;
}

export interface SendfileEngine {
  /**
   * Sends `length` bytes of `fileFd` from `offset` to the socket; resolves with the bytes sent (= length).
   * Rejects with an Error whose `code` is 'EPIPE', 'ECONNRESET', 'ETIMEDOUT', 'ECANCELED', 'ENODATA' (file shorter
   * than offset + length), ... and whose `bytesSent` says how far it got.
   */
  send(socketFd: number, fileFd: number, offset: number, length: number, opts?: SendOptions): Promise<number>;
}

export interface SendfileError extends Error {
  code: string;
  errno: number;
  bytesSent: number;
}

interface Binding {
  init(onComplete: (id: number, sent: number, errno: number) => void, threads?: number): void;
  submit(socketFd: number, fileFd: number, offset: number, length: number, idleTimeoutMs: number): number;
  cancel(id: number): void;
  /** setsockopt TCP_RTO_MAX_MS: 0, or the errno (ENOPROTOOPT before Linux 6.15). Absent in an older build. */
  rtoMax?(socketFd: number, ms: number): number;
  /** getsockopt TCP_RTO_MAX_MS: the socket's cap in ms, or -errno. */
  rtoMaxOf?(socketFd: number): number;
}

interface Pending {
  resolve(sent: number): void;
  reject(err: Error): void;
  done(): void;
}

/** The fd of a connected TCP socket (Linux), or undefined if Node does not expose one. */
export function socketFd(socket: Socket): number | undefined {
  const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

/** An errno (positive) by its name: 'EPIPE', ...; `E<n>` for one Node does not know. */
function errnoName(errno: number): string {
  try {
    return getSystemErrorName(-errno);
  } catch {
    return `E${errno}`;
  }
}

export function sendfileError(errno: number, bytesSent: number, message?: string): SendfileError {
  const code = errnoName(errno);
  const err = new Error(message ?? `sendfile: ${code} after ${bytesSent} bytes`) as SendfileError;
  err.code = code;
  err.errno = errno;
  err.bytesSent = bytesSent;
  return err;
}

export const addonPath = (): string => addonFile('sendfile');

/**
 * Engine threads: one per core (at most 4), since on loopback and fast NICs the sending thread also does
 * the kernel's TCP work; ROLECAST_SENDFILE_THREADS overrides.
 */
function engineThreads(): number {
  const wanted = Number(process.env.ROLECAST_SENDFILE_THREADS ?? Math.min(4, availableParallelism()));
  return Number.isInteger(wanted) && wanted >= 1 && wanted <= 16 ? wanted : 1;
}

function createEngine(binding: Binding): SendfileEngine {
  const pending = new Map<number, Pending>();
  binding.init((id, sent, errno) => {
    const job = pending.get(id);
    if (!job) return;
    pending.delete(id);
    job.done();
    if (errno === 0) job.resolve(sent);
    else job.reject(sendfileError(errno, sent));
  }, engineThreads());
  return {
    send(socketFd, fileFd, offset, length, opts = {}) {
      for (const [name, value] of [['socketFd', socketFd], ['fileFd', fileFd], ['offset', offset], ['length', length]] as const) {
        if (!Number.isSafeInteger(value) || value < 0) {
          return Promise.reject(new RangeError(`sendfile: ${name} must be a non-negative safe integer, got ${value}`));
        }
      }
      const timeoutMs = opts.timeoutMs ?? 0;
      if (!(timeoutMs >= 0) || !Number.isFinite(timeoutMs)) {
        return Promise.reject(new RangeError(`sendfile: timeoutMs must be a non-negative finite number, got ${timeoutMs}`));
      }
      const { signal } = opts;
      if (signal?.aborted) return Promise.reject(sendfileError(constants.errno.ECANCELED, 0, 'sendfile: aborted before start'));
      if (length === 0) return Promise.resolve(0);
      return new Promise<number>((resolve, reject) => {
        let id: number;
        try {
          id = binding.submit(socketFd, fileFd, offset, length, Math.ceil(timeoutMs));
        } catch (e) {
          const err = e as Error & { errno?: number; code?: string };
          if (typeof err.errno === 'number') err.code = getSystemErrorName(-err.errno);
          reject(err);
          return;
        }
        const onAbort = () => binding.cancel(id);
        signal?.addEventListener('abort', onAbort, { once: true });
        pending.set(id, { resolve, reject, done: () => signal?.removeEventListener('abort', onAbort) });
      });
    },
  };
}

let engine: SendfileEngine | undefined;
let binding: Binding | undefined;
let unavailable: string | undefined;
let loaded = false;

/** The process-wide engine, or undefined when the addon is not built or the platform is not Linux. */
export function sendfileEngine(): SendfileEngine | undefined {
  if (loaded) return engine;
  loaded = true;
  if (process.platform !== 'linux') {
    unavailable = `sendfile engine is Linux-only (platform ${process.platform})`;
    return undefined;
  }
  const file = addonPath();
  if (!existsSync(file)) {
    unavailable = `native addon not built: ${file} missing (run npm run build:native)`;
    return undefined;
  }
  try {
    binding = createRequire(import.meta.url)(file) as Binding;
    engine = createEngine(binding);
  } catch (e) {
    unavailable = `native addon failed to load: ${(e as Error).message}`;
  }
  return engine;
}

/** Why sendfileEngine() returned undefined (undefined if it has not been asked or the engine is available). */
export function sendfileUnavailableReason(): string | undefined {
  return unavailable;
}

/**
 * Caps a TCP socket's retransmission timeout (TCP_RTO_MAX_MS, Linux 6.15+): each timeout in a row doubles
 * it, up to this instead of the kernel's 120 s. Returns 0, the errno name the kernel gave
 * ('ENOPROTOOPT': too old), or undefined without the addon or a socket descriptor.
 */
export function capRetransmitTimeout(socket: Socket, ms: number): string | 0 | undefined {
  if (!sendfileEngine() || !binding?.rtoMax) return undefined;
  const fd = socketFd(socket);
  if (fd === undefined) return undefined;
  const errno = binding.rtoMax(fd, ms);
  return errno === 0 ? 0 : errnoName(errno);
}

/** The socket's retransmission timeout cap in ms (TCP_RTO_MAX_MS), or undefined where it cannot be read. */
export function retransmitTimeoutCap(socket: Socket): number | undefined {
  const fd = sendfileEngine() && binding?.rtoMaxOf ? socketFd(socket) : undefined;
  if (fd === undefined) return undefined;
  const v = binding!.rtoMaxOf!(fd);
  return v >= 0 ? v : undefined;
}
