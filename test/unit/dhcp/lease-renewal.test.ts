/**
 * Renewing a reserved machine's lease that is already on disk does not wait for a sync (the grant is
 * durable; only the later expiry follows with the next batch); everything else still resolves only once
 * its record is fdatasync'd. A store opened on the same directory without a close (what kill -9 leaves)
 * still has every grant. Real files in a temp dir.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { FileLeaseStore } from '../../../src/state/file/leases.js';
import type { Logger } from '../../../src/log.js';

const dirs: string[] = [];
afterEach(() => { for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true }); });
const quiet = pino({ level: 'silent' }) as unknown as Logger;
const later = (s: number) => new Date(Date.now() + s * 1000).toISOString();
const MAC = '52:54:00:00:02:01';
const bound = (expires: number, over: Record<string, string> = {}) => ({ mac: MAC, ip: '10.0.0.101', state: 'bound' as const, expiresAt: later(expires), host: 'w101', ...over });
const open = async () => { const d = mkdtempSync(join(tmpdir(), 'rolecast-renew-')); dirs.push(d); return { d, s: await FileLeaseStore.open(d, quiet) }; };
const onDisk = (d: string, r: { expiresAt: string }) => readFileSync(join(d, 'leases.jsonl'), 'utf8').includes(r.expiresAt);

/** Which of two commits resolves first. */
async function first(a: Promise<unknown>, b: Promise<unknown>): Promise<'a' | 'b'> {
  return Promise.race([a.then(() => 'a' as const), b.then(() => 'b' as const)]);
}

describe('reserved lease renewals', () => {
  it('a renewal of a durable reserved lease does not wait for a sync; the grant survives a crash', async () => {
    const { d, s } = await open();
    const grant = bound(3600);
    expect(await s.commit(grant, { reserved: true })).toBe(true);
    expect(onDisk(d, grant)).toBe(true); // the first grant waited for its sync
    const pool = s.commit({ mac: '52:54:00:00:aa:01', ip: '10.0.0.200', state: 'bound', expiresAt: later(60) }, { network: 'prov' });
    const renewal = s.commit(bound(7200), { reserved: true });
    expect(await first(renewal, pool)).toBe('a');
    await pool;
    // kill -9 now: a store opened on the same files (no close) has the grant, bound, at its address.
    const again = await FileLeaseStore.open(d, quiet);
    expect(again.lastOf(MAC)).toMatchObject({ ip: '10.0.0.101', state: 'bound', host: 'w101' });
    await again.close();
    await s.close();
  });

  it('waits for the sync when anything but the expiry changes, or the lease is not reserved or not yet durable', async () => {
    const { d, s } = await open();
    const grant = s.commit(bound(3600), { reserved: true });
    const renewal = bound(3700);
    expect(await s.commit(renewal, { reserved: true })).toBe(true); // the grant it renews was not on disk yet
    await grant;
    expect(onDisk(d, renewal)).toBe(true);
    for (const [r, opts] of [
      [bound(3800), {}], // not reserved: a pool lease's expiry decides who may get the address
      [bound(3900, { ip: '10.0.0.102' }), { reserved: true }], // another address
      [bound(4000, { host: 'w101b' }), { reserved: true }], // renamed machine
    ] as const) {
      expect(await s.commit(r, opts)).toBe(true);
      expect(onDisk(d, r), JSON.stringify(r)).toBe(true);
    }
    const released = { ...bound(0, { ip: '10.0.0.102', host: 'w101b' }), state: 'released' as const };
    await s.commit(released, { reserved: true });
    const back = bound(4100, { ip: '10.0.0.102', host: 'w101b' });
    expect(await s.commit(back, { reserved: true })).toBe(true); // after a release: a new grant
    expect(onDisk(d, back)).toBe(true);
    await s.close();
  });

  it('writes only the last of many renewals between two syncs; a release after them stays the last word', async () => {
    const { d, s } = await open();
    await s.commit(bound(3600), { reserved: true });
    const renewals = Array.from({ length: 200 }, (_, i) => bound(3601 + i));
    await Promise.all(renewals.map((r) => s.commit(r, { reserved: true })));
    const released = { ...bound(0), state: 'released' as const };
    await s.commit(released, { reserved: true }); // waits for its sync: every renewal before it is written too
    const text = readFileSync(join(d, 'leases.jsonl'), 'utf8');
    expect(text.split('\n').filter((l) => l.includes(MAC)).length).toBeLessThan(20);
    // The release is newer than every renewal: a store opened now (kill -9) has it, not a bound lease.
    const again = await FileLeaseStore.open(d, quiet);
    expect(again.lastOf(MAC)).toMatchObject({ state: 'released' });
    await again.close();
    await s.close();
  });

  it('steady renewals are written once a RENEWAL_WRITE_MS, not back to back (and each within it)', async () => {
    const { d, s } = await open();
    await s.commit(bound(3600), { reserved: true });
    // Renewals one after another for 2.2 s (a DHCP load test's known machines): the writer used to loop
    // while any renewal waited, writing and syncing one batch after another for as long as they kept coming.
    const t0 = Date.now();
    let last = bound(3600);
    let written = 0;
    const lines = () => readFileSync(join(d, 'leases.jsonl'), 'utf8').trim().split('\n').length;
    for (let i = 0; Date.now() - t0 < 2200; i++) {
      last = bound(3601 + i);
      expect(await s.commit(last, { reserved: true })).toBe(true);
      await new Promise((r) => setImmediate(r));
      if (!written && i % 16 === 0 && lines() > 1) written = Date.now() - t0;
    }
    expect(lines()).toBeLessThanOrEqual(3); // the grant, then one batch of renewals a second
    expect(written).toBeGreaterThan(900); // the first batch when the timer fires...
    // ...RENEWAL_WRITE_MS after the first renewal, plus its write and sync: a bound with room for a slow
    // disk (1500 could fail on a loaded CI box), well short of a second timer.
    expect(written).toBeLessThan(2000);
    await s.close(); // the renewals still waiting are written at close
    expect(onDisk(d, last)).toBe(true);
  });

  it('a renewal right after a new grant is written after it', async () => {
    const { d, s } = await open();
    await s.commit(bound(3600), { reserved: true });
    const grant = bound(3700, { ip: '10.0.0.102' }); // another address: a new grant, waits for its sync
    const renewal = bound(3800, { ip: '10.0.0.102' });
    const g = s.commit(grant, { reserved: true });
    const r = s.commit(renewal, { reserved: true }); // its grant is not on disk yet: waits as well
    await Promise.all([g, r]);
    const extended = bound(3900, { ip: '10.0.0.102' });
    await s.commit(extended, { reserved: true }); // a renewal of a durable grant: follows with the next batch
    await s.close();
    const last = await FileLeaseStore.open(d, quiet);
    expect(last.lastOf(MAC)).toMatchObject({ state: 'bound', ip: '10.0.0.102', expiresAt: extended.expiresAt });
    await last.close();
  });
  it('an offer of the reserved address is answered at once and, once its ACK follows, never written; a pool offer waits', async () => {
    const { d, s } = await open();
    const poolOffer = s.commit({ mac: '52:54:00:00:aa:01', ip: '10.0.0.200', state: 'offered', expiresAt: later(60) }, { network: 'prov' });
    const offer = { ...bound(61), state: 'offered' as const };
    const offered = s.commit(offer, { reserved: true });
    expect(await first(offered, poolOffer)).toBe('a'); // the pool offer's sync is still under way
    expect(s.lastOf(MAC)).toMatchObject({ state: 'offered', ip: '10.0.0.101' });
    const ack = bound(3600);
    expect(await s.commit(ack, { reserved: true })).toBe(true); // the first bound lease waits for its sync
    expect(onDisk(d, ack)).toBe(true);
    expect(await poolOffer).toBe(true);
    expect(onDisk(d, offer)).toBe(false); // its ACK superseded it before it was written
    // An offer with no ACK after it is written with the next batch (or within RENEWAL_WRITE_MS).
    const lone = { ...bound(90), mac: '52:54:00:00:02:02', ip: '10.0.0.102', host: 'w102', state: 'offered' as const };
    expect(await s.commit(lone, { reserved: true })).toBe(true);
    expect(onDisk(d, lone)).toBe(false);
    await s.commit({ mac: '52:54:00:00:aa:03', ip: '10.0.0.203', state: 'bound', expiresAt: later(30) }, { network: 'prov' });
    expect(onDisk(d, lone)).toBe(true);
    const again = await FileLeaseStore.open(d, quiet); // kill -9 now: the grant is there
    expect(again.lastOf(MAC)).toMatchObject({ state: 'bound', ip: '10.0.0.101' });
    await again.close();
    await s.close();
  });
});
