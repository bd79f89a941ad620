/** The caps (global and per BMC) and the deadline/retry wrapper, on real timers with short periods. */
import { describe, expect, it } from 'vitest';
import { BmcLimiter } from '../../../src/bmc/limit.js';
import { callWithDeadline } from '../../../src/bmc/call.js';
import { BmcError } from '../../../src/bmc/types.js';
import { classifyIpmitool } from '../../../src/bmc/ipmi.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('BmcLimiter', () => {
  it('never runs more than the cap at once, and one call at a time per BMC', async () => {
    const lim = new BmcLimiter(3);
    let now = 0; let peak = 0;
    const perBmc = new Map<string, number>(); let perPeak = 0;
    const deadline = Date.now() + 5000;
    const jobs = Array.from({ length: 20 }, (_, i) => lim.run(`bmc${i % 5}`, deadline, 5000, async () => {
      now++; peak = Math.max(peak, now);
      const k = `bmc${i % 5}`; perBmc.set(k, (perBmc.get(k) ?? 0) + 1); perPeak = Math.max(perPeak, perBmc.get(k)!);
      await sleep(10);
      perBmc.set(k, perBmc.get(k)! - 1); now--;
      return i;
    }));
    expect(await Promise.all(jobs)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(peak).toBe(3);
    expect(perPeak).toBe(1);
    expect(lim.active).toBe(0);
  });

  it('a caller waiting past its deadline gets a clear busy error, and its turn does not break the chain', async () => {
    const lim = new BmcLimiter(1);
    const slow = lim.run('a', Date.now() + 1000, 1000, () => sleep(300));
    const err = await lim.run('b', Date.now() + 50, 50, async () => 'never').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BmcError);
    expect((err as BmcError).message).toBe('BMC b: no free BMC call slot within 0.1 s (1 calls in flight, cap 1)');
    const same = await lim.run('a', Date.now() + 50, 50, async () => 'never').catch((e: unknown) => e);
    expect((same as Error).message).toBe('BMC a: an earlier call to it was still running after 0.1 s');
    await slow;
    expect(await lim.run('a', Date.now() + 1000, 1000, async () => 'next')).toBe('next');
    expect(lim.active).toBe(0);
    expect(lim.waiting).toBe(0);
  });
});

describe('callWithDeadline', () => {
  it('retries a retryable failure and gives up at the attempt limit', async () => {
    let n = 0;
    const ok = await callWithDeadline('x', { timeoutMs: 2000, attempts: 2 }, Date.now() + 2000, async () => {
      if (++n === 1) throw new BmcError('busy', 'busy', true);
      return 'ok';
    });
    expect([ok, n]).toEqual(['ok', 2]);
    n = 0;
    const err = await callWithDeadline('x', { timeoutMs: 2000, attempts: 3 }, Date.now() + 2000, async () => { n++; throw new BmcError('auth', 'authentication refused'); }).catch((e: unknown) => e);
    expect([(err as BmcError).code, n]).toEqual(['E_BMC_AUTH', 1]);
  });

  it('aborts the attempt at the deadline and says the BMC did not answer', async () => {
    const t0 = Date.now();
    let aborted = false;
    const err = await callWithDeadline('10.0.0.211', { timeoutMs: 200, attempts: 2 }, t0 + 200, (signal) => new Promise((_, reject) => {
      signal.addEventListener('abort', () => { aborted = true; reject(new Error('aborted')); });
    })).catch((e: unknown) => e);
    expect((err as BmcError).message).toBe('BMC 10.0.0.211 did not answer in 0.2 s');
    expect((err as BmcError).code).toBe('E_BMC_TIMEOUT');
    expect(aborted).toBe(true);
    expect(Date.now() - t0).toBeLessThan(400);
  });
});

describe('ipmitool failures', () => {
  const r = (stderr: string) => ({ code: 1, stdout: '', stderr });
  it('wrong password and unknown user are authentication failures, never a state', () => {
    expect(classifyIpmitool('b', r('Loading IANA PEN Registry...\n> RAKP 2 HMAC is invalid\nError: Unable to establish IPMI v2 / RMCP+ session\n')).code).toBe('E_BMC_AUTH');
    expect(classifyIpmitool('b', r('RAKP 2 message indicates an error : unauthorized name\nError: Unable to establish IPMI v2 / RMCP+ session\n')).message).toBe('BMC b: authentication refused (check the user and its secret)');
  });
  it('no session, no socket: unreachable and retryable; anything else is a protocol error with ipmitool\'s words', () => {
    const e = classifyIpmitool('b', r('Error: Unable to establish IPMI v2 / RMCP+ session\n'));
    expect([e.code, e.retryable]).toEqual(['E_BMC_UNREACHABLE', true]);
    expect(classifyIpmitool('b', r('Could not open socket!\n')).code).toBe('E_BMC_UNREACHABLE');
    expect(classifyIpmitool('b', r('Set Chassis Power Control to Cycle failed: Command not supported in present state\n')).code).toBe('E_BMC_REFUSED');
    expect(classifyIpmitool('b', r('something odd\n')).message).toBe('BMC b: ipmitool failed: something odd');
    // -v prints the OEM probe's "Invalid command" on every run: not the failure, and not a refusal.
    const noisy = classifyIpmitool('b', r('Loading IANA PEN Registry...\nRunning Get VSO Capabilities my_addr 0x20, transit 0, target 0x20\nInvalid completion code received: Invalid command\nDiscovered IPMB address 0x0\nsomething odd\n'));
    expect([noisy.code, noisy.message]).toEqual(['E_BMC_PROTOCOL', 'BMC b: ipmitool failed: something odd']);
  });
});
