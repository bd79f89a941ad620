/**
 * Concurrency caps for BMC calls: at most `max` calls in flight across all BMCs, and one at a time per
 * BMC. BMCs are small embedded systems that fall over when several clients talk to them at once
 * (ipmitool storms, metal3-io/ironic-image#688); a dead BMC must not hold a slot longer than its
 * timeout, and a caller never waits past its own deadline for a slot: it gets a clear error instead.
 */
import { BmcError, seconds } from './types.js';

interface Waiter { grant: () => void; fail: (err: Error) => void }

export class BmcLimiter {
  private inFlight = 0;
  private readonly queue: Waiter[] = [];
  /** The tail of each BMC's chain of calls: the next call for that BMC starts after it. */
  private readonly perBmc = new Map<string, Promise<void>>();

  constructor(readonly max: number) {
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`BMC call cap must be a positive integer (got ${max})`);
  }

  get active(): number { return this.inFlight; }
  get waiting(): number { return this.queue.length; }

  /**
   * Run `fn` once this BMC is free and a global slot is free, unless `deadline` (epoch ms) passes
   * first. The per-BMC turn is taken before the global slot, so calls queued behind a slow BMC hold
   * no slot other BMCs could use.
   */
  async run<T>(bmc: string, deadline: number, timeoutMs: number, fn: () => Promise<T>): Promise<T> {
    const prev = this.perBmc.get(bmc) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => { release = r; });
    const tail = prev.then(() => mine);
    this.perBmc.set(bmc, tail);
    try {
      await untilDeadline(prev, deadline, () => new BmcError('busy', `BMC ${bmc}: an earlier call to it was still running after ${seconds(timeoutMs)}`));
      await this.slot(deadline, () => new BmcError('busy', `BMC ${bmc}: no free BMC call slot within ${seconds(timeoutMs)} (${this.inFlight} calls in flight, cap ${this.max})`));
      try {
        return await fn();
      } finally {
        this.releaseSlot();
      }
    } finally {
      release();
      if (this.perBmc.get(bmc) === tail) this.perBmc.delete(bmc);
    }
  }

  private slot(deadline: number, onTimeout: () => Error): Promise<void> {
    if (this.inFlight < this.max) {
      this.inFlight++;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const w: Waiter = {
        grant: () => { clearTimeout(timer); resolve(); },
        fail: reject,
      };
      const timer = setTimeout(() => {
        const i = this.queue.indexOf(w);
        if (i >= 0) this.queue.splice(i, 1);
        reject(onTimeout());
      }, Math.max(0, deadline - Date.now()));
      this.queue.push(w);
    });
  }

  private releaseSlot(): void {
    const next = this.queue.shift();
    if (next) next.grant(); // the slot passes straight to the next waiter
    else this.inFlight--;
  }
}

function untilDeadline(p: Promise<void>, deadline: number, onTimeout: () => Error): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(onTimeout()), Math.max(0, deadline - Date.now()));
    void p.then(() => { clearTimeout(timer); resolve(); });
  });
}
