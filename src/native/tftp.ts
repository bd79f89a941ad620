// The native TFTP data engine (native/tftp/tftp.c): the DATA/ACK loop of a read transfer on its own thread,
// so a lock-step round trip costs a recv, a pread and a send instead of an event-loop wake-up, a dgram send
// and a timer refresh in JS. The server (src/tftp/server.ts) still decides everything: it resolves the file,
// negotiates the options, holds the slot; it hands the engine an open file, the client's address and the
// options, and hears back when the client first answers and when the transfer ends. Without the addon (not
// built, not Linux) or with ROLECAST_TFTP_ENGINE=js the server runs its JS sessions (src/tftp/session.ts).
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { addonFile } from './addon.js';

/** How a transfer ended (the engine's status codes). */
export const NATIVE_STATUS = ['ok', 'timeout', 'client-error', 'cancelled', 'read-error', 'socket-error', 'stalled'] as const;
export type NativeStatus = (typeof NATIVE_STATUS)[number];

export interface NativeOutcome {
  status: NativeStatus;
  /** The client's ERROR code when status is 'client-error'. */
  clientCode: number;
  /** Ended before the client acknowledged the OACK (OVMF's size probe ends so). */
  afterOack: boolean;
  bytes: number;
  retransmits: number;
  /** Sends after which the engine kept polling instead of sleeping (see hotpoll.ts for the rule). */
  hotPolls: number;
  /** Why, in words ('' when ok). */
  message: string;
}

export interface NativeTransfer {
  bind: string;
  clientAddress: string;
  clientPort: number;
  /** An open file; the engine keeps its own duplicate, so the caller may close it once submit() returned. */
  fd: number;
  size: number;
  blksize: number;
  windowsize: number;
  timeoutMs: number;
  retries: number;
  maxStallMs: number;
  /** The OACK packet to send first, or undefined to start with DATA 1. */
  oack?: Buffer;
}

export interface TftpEngine {
  /** Starts a transfer; throws (with errno) when its socket cannot be made. */
  submit(t: NativeTransfer, on: { confirmed(): void; done(o: NativeOutcome): void }): number;
  cancel(id: number): void;
}

/** Windows above this go to the JS session (the engine's per-transfer packet table). */
export const NATIVE_MAX_WINDOW = 64;

interface Binding {
  init(onEvent: (id: number, kind: number, info: Omit<NativeOutcome, 'status'> & { status: number }) => void, busyPollUs: number, idleOnly: number): void;
  submit(...args: [string, string, number, number, number, number, number, number, number, number, Buffer | undefined]): number;
  cancel(id: number): void;
}

const addonPath = (): string => addonFile('tftp');

let binding: Binding | undefined | null = null;
const listeners = new Map<number, { confirmed(): void; done(o: NativeOutcome): void }>();

function load(): Binding | undefined {
  if (binding !== null) return binding;
  binding = undefined;
  const file = addonPath();
  if (process.platform !== 'linux' || process.env.ROLECAST_TFTP_ENGINE === 'js' || !existsSync(file)) return undefined;
  try {
    binding = createRequire(import.meta.url)(file) as Binding;
  } catch {
    binding = undefined;
  }
  return binding;
}

/**
 * The process's engine with this busy-poll budget, or undefined (the server then uses its JS sessions).
 * The engine spins only while no more tasks are runnable than there are cores (a saturated machine
 * needs the slice for the client); ROLECAST_TFTP_SPIN_ALWAYS=1 drops that condition (tests of the rule).
 */
export function tftpEngine(busyPollUs: number): TftpEngine | undefined {
  const b = load();
  if (!b) return undefined;
  b.init((id, kind, info) => {
    const l = listeners.get(id);
    if (!l) return;
    if (kind === 0) return l.confirmed();
    listeners.delete(id);
    l.done({ ...info, status: NATIVE_STATUS[info.status] ?? 'socket-error' });
  }, busyPollUs, process.env.ROLECAST_TFTP_SPIN_ALWAYS === '1' ? 0 : 1);
  return {
    submit(t, on) {
      const id = b.submit(t.bind, t.clientAddress, t.clientPort, t.fd, t.size, t.blksize, t.windowsize, t.timeoutMs, t.retries, t.maxStallMs, t.oack);
      listeners.set(id, on);
      return id;
    },
    cancel: (id) => b.cancel(id),
  };
}
