/**
 * A gate on large sends (images and rootfs of BULK_MIN_BYTES or more): at most `slots` of them go out at
 * once, the rest wait their turn in arrival order (http.bulkSlots; 0, the default, turns it off). In a
 * boot storm, 300 rootfs downloads all sending at once each get a sliver of the box: small TCP windows,
 * twice the segments and ACKs per byte, every download finishing near the end. 24 at a time sent the same
 * bytes in fuller segments and the rootfs stage ended sooner (bench:storm); but 200 downloads on loopback
 * moved 15-20% fewer bytes per second that way (bench:http), hence off by default (CHANGELOG.md).
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
  /** Sends holding a slot. */
  active: number;
  /** Sends waiting for one. */
  queued: number;
  /** Sends that held a slot for holdMs and went on without it, since start. */
  overran: number;
}

export class BulkGate {
  private active = 0;
  private overran = 0;
  private readonly queue: Array<() => void> = [];

  constructor(readonly slots: number, readonly holdMs: number) {
    if (!Number.isInteger(slots) || slots < 0) throw new RangeError(`bulk gate: slots must be a non-negative integer, got ${slots}`);
    if (!(holdMs > 0) || !Number.isFinite(holdMs)) throw new RangeError(`bulk gate: holdMs must be a positive number, got ${holdMs}`);
  }

  /** Whether a send of this many bytes goes through the gate at all. */
  gates(length: number): boolean {
    return this.slots > 0 && length >= BULK_MIN_BYTES;
  }

  stats(): BulkStats {
    return { active: this.active, queued: this.queue.length, overran: this.overran };
  }

  /**
   * A slot, now or when one frees. Aborting while queued rejects with code ECANCELED and leaves the queue
   * (a client that hung up does not take a turn).
   */
  acquire(signal?: AbortSignal): Promise<BulkTicket> {
    if (signal?.aborted) return Promise.reject(cancelled());
    if (this.active < this.slots) return Promise.resolve(this.grant());
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
      this.queue.shift()?.();
    };
    const timer = setTimeout(() => { if (held) { this.overran++; free(); } }, this.holdMs);
    timer.unref();
    return { release: free };
  }
}

function cancelled(): Error {
  return Object.assign(new Error('the client went away while its send waited for a bulk slot'), { code: 'ECANCELED' });
}
