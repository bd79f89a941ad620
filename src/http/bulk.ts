/**
 * A gate on large sends (images and rootfs of BULK_MIN_BYTES or more): at most `slots` of them go out at
 * once, the rest wait their turn in arrival order (http.bulkSlots; 0 turns it off). In a boot storm, 300
 * rootfs downloads all sending at once each get a sliver of the box: small TCP windows, twice the segments
 * and ACKs per byte, the kernel short of TCP memory and dropping segments, every download finishing near
 * the end. 24 at a time sent the same bytes in fuller segments, with almost no retransmission timeouts,
 * and the rootfs stage ended sooner (bench:storm). But 200 downloads on loopback by fast readers moved
 * 15-20% fewer bytes per second when they took turns (bench:http), and the kernel was never short there.
 *
 * Hence `when` (http.bulkWhen): 'pressure' (the default) closes the gate only while the kernel reports
 * TCP memory pressure (src/http/tcp-pressure.ts); until then every send starts at once. Once sends wait,
 * they go in turn, `slots` at a time, until none waits, whatever the kernel says meanwhile: opening the
 * gate to a queue of a hundred at once would bring the pressure straight back. 'always' keeps it closed.
 *
 * A slot is held at most `holdMs`: then the send goes on without one and the next waiting send starts.
 * A client that reads slowly (or not at all) thus delays the queue by at most holdMs, never blocks it;
 * under the worst mix the gate falls back to everything at once, which is what it was without it.
 */
/** Sends smaller than this (kernels, initrds, scripts) never wait. */
export const BULK_MIN_BYTES = 32 << 20;

export interface BulkTicket {
  /** Gives the slot back (idempotent); a send calls it when it ends, however it ends. */
  release(): void;
}

export interface BulkStats {
  /** Sends holding a slot: started less than holdMs ago (under 'pressure', also those that started while the gate was open). */
  active: number;
  /** Sends waiting for one. */
  queued: number;
  /** Sends that held a slot for holdMs while others waited and went on without it, since start. */
  overran: number;
  /** Times the gate closed on TCP memory pressure (bulkWhen: pressure) and sends began to wait, since start. */
  closed: number;
}

/** When the gate holds sends back: only while the kernel is short of TCP memory, or always. */
export type BulkWhen = 'pressure' | 'always';

export class BulkGate {
  private active = 0;
  private overran = 0;
  private closedTimes = 0;
  private readonly queue: Array<() => void> = [];

  /** `pressure`: the kernel's TCP memory pressure flag (needed for when = 'pressure'). */
  constructor(readonly slots: number, readonly holdMs: number, readonly when: BulkWhen = 'always', private readonly pressure?: () => boolean) {
    if (!Number.isInteger(slots) || slots < 0) throw new RangeError(`bulk gate: slots must be a non-negative integer, got ${slots}`);
    if (!(holdMs > 0) || !Number.isFinite(holdMs)) throw new RangeError(`bulk gate: holdMs must be a positive number, got ${holdMs}`);
    if (when === 'pressure' && slots > 0 && !pressure) throw new TypeError('bulk gate: when = pressure needs a pressure probe');
  }

  /** Whether a send of this many bytes goes through the gate at all. */
  gates(length: number): boolean {
    return this.slots > 0 && length >= BULK_MIN_BYTES;
  }

  stats(): BulkStats {
    return { active: this.active, queued: this.queue.length, overran: this.overran, closed: this.closedTimes };
  }

  /**
   * Whether a send arriving now starts at once: nobody waits, and a slot is free or the gate is open
   * (when = 'pressure' and the kernel reports none).
   */
  private admits(): boolean {
    if (this.queue.length) return false;
    if (this.active < this.slots) return true;
    if (this.when === 'always') return false;
    if (!this.pressure!()) return true;
    this.closedTimes++;
    return false;
  }

  /**
   * A slot, now or when one frees. Aborting while queued rejects with code ECANCELED and leaves the queue
   * (a client that hung up does not take a turn).
   */
  acquire(signal?: AbortSignal): Promise<BulkTicket> {
    if (signal?.aborted) return Promise.reject(cancelled());
    if (this.admits()) return Promise.resolve(this.grant());
    return new Promise((resolve, reject) => {
      const go = () => { signal?.removeEventListener('abort', gone); resolve(this.grant()); };
      const gone = () => {
        const i = this.queue.indexOf(go);
        if (i >= 0) this.queue.splice(i, 1);
        reject(cancelled());
      };
      signal?.addEventListener('abort', gone, { once: true });
      this.queue.push(go);
    });
  }

  private grant(): BulkTicket {
    this.active++;
    let held = true;
    const free = () => {
      if (!held) return;
      held = false;
      clearTimeout(timer);
      this.active--;
      // Waiting sends start while slots are free. Under 'pressure' more may be sending than there are
      // slots (they started while the gate was open): then nothing starts until they are fewer.
      while (this.queue.length && this.active < this.slots) this.queue.shift()!();
    };
    // Overran: held past holdMs while others waited (a send alone past holdMs delayed nobody).
    const timer = setTimeout(() => { if (held) { if (this.queue.length) this.overran++; free(); } }, this.holdMs);
    timer.unref();
    return { release: free };
  }
}

function cancelled(): Error {
  return Object.assign(new Error('the client went away while its send waited for a bulk slot'), { code: 'ECANCELED' });
}
