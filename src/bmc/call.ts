/**
 * One BMC call with a hard deadline and a bounded retry. The deadline covers every attempt and the
 * pauses between them, so "within its timeout" holds for the whole call; when it passes, the attempt
 * in progress is aborted (ipmitool killed, the HTTP request destroyed) and the caller hears that the
 * BMC did not answer in that time — never a state.
 */
import { BmcError, seconds } from './types.js';

export interface CallPolicy {
  timeoutMs: number;
  /** Attempts in all (1 = no retry). */
  attempts: number;
}

export const DEFAULT_POLICY: CallPolicy = { timeoutMs: 10_000, attempts: 2 };

/**
 * Run `attempt` until it succeeds, fails for good, or `deadline` passes. A failed attempt is retried
 * only when the error says it is safe (`retryable`: nothing reached the BMC, or it said it was busy)
 * and at least a quarter second is left.
 */
export async function callWithDeadline<T>(bmc: string, policy: CallPolicy, deadline: number, attempt: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), Math.max(0, deadline - Date.now()));
  const timedOut = () => new BmcError('timeout', `BMC ${bmc} did not answer in ${seconds(policy.timeoutMs)}`);
  try {
    for (let n = 1; ; n++) {
      if (ac.signal.aborted) throw timedOut();
      try {
        return await attempt(ac.signal);
      } catch (err) {
        if (ac.signal.aborted) throw timedOut();
        const e = err instanceof BmcError ? err : new BmcError('protocol', `BMC ${bmc}: ${(err as Error).message}`, false, { cause: err });
        const left = deadline - Date.now();
        if (!e.retryable || n >= policy.attempts || left < 250) throw e;
        await pause(Math.min(200 * n, left / 4), ac.signal);
      }
    }
  } finally {
    clearTimeout(timer);
  }
}

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() { clearTimeout(t); signal.removeEventListener('abort', done); resolve(); }
    signal.addEventListener('abort', done, { once: true });
  });
}
