/**
 * Boot tokens (issue 16): the codec, the decision whether a request mints one, and the per-server boot
 * records (FileBootTokens) that make a token one-time and superseded by the next script fetch.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { formatBootToken, parseBootToken, phoneKey, signEvent, signatureMatches, tokenDue } from '../../../src/boot/token.js';
import { planBoot, type BootTargetPlan } from '../../../src/boot/plan.js';
import { FileBootTokens } from '../../../src/state/file/boots.js';
import { inventory, machine, role } from './fixture.js';

const key = randomBytes(32);
const MAC = '52:54:00:00:00:01';
const dir = mkdtempSync(join(tmpdir(), 'rolecast-boots-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('token codec', () => {
  it('round-trips, and is bound to key, MAC and counter', () => {
    const t = formatBootToken(key, MAC, 1_764_660_000_123);
    expect(t).toMatch(/^[0-9a-z]+\.[A-Za-z0-9_-]{22}$/);
    expect(parseBootToken(key, MAC, t)).toBe(1_764_660_000_123);
    expect(parseBootToken(randomBytes(32), MAC, t)).toBeUndefined();
    expect(parseBootToken(key, '52:54:00:00:00:02', t)).toBeUndefined();
    const [seq, mac] = t.split('.');
    expect(parseBootToken(key, MAC, `${(parseInt(seq!, 36) + 1).toString(36)}.${mac}`)).toBeUndefined();
    for (const bad of ['', '.', 'x', `${t}x`, `${seq}.${'A'.repeat(21)}`, `zzzzzzzzzzzz.${mac}`, `${seq}.${mac}\n`]) expect(parseBootToken(key, MAC, bad), bad).toBeUndefined();
  });

  it('the phone-home key differs per boot and from the token; signatures compare in constant time', () => {
    expect(phoneKey(key, MAC, 1)).not.toBe(phoneKey(key, MAC, 2));
    expect(phoneKey(key, MAC, 1)).toMatch(/^[0-9a-f]{64}$/);
    const sig = signEvent(phoneKey(key, MAC, 1), '{"stage":"booted"}');
    expect(signatureMatches(sig, sig.toUpperCase())).toBe(true);
    expect(signatureMatches(sig, sig.slice(0, -1))).toBe(false);
    expect(signatureMatches(sig, signEvent(phoneKey(key, MAC, 2), '{"stage":"booted"}'))).toBe(false);
  });
});

describe('tokenDue: only the request that hands out the config, from the MAC\'s own address after its DHCP', () => {
  const inv = inventory([machine('w1', MAC, 'web', { ip: '10.0.0.50' }), machine('g1', '52:54:00:00:00:02', 'web', { ip: '10.0.0.51', boot: 'grub' })], [role('web')]);
  const plan = (mac: string, request: 'script' | 'config' | 'rootfs') => planBoot({ mac, protocol: 'http', ipxe: true, pxe: true, arch: 7, request }, inv, { baseUrl: 'http://10.0.0.1:8080' }) as BootTargetPlan;
  const bound = { mac: MAC, ip: '10.0.0.50', state: 'bound' as const, expiresAt: '2999-01-01T00:00:00Z' };
  it.each([
    ['script, bound lease at that address', MAC, 'script', '10.0.0.50', bound, true, true],
    ['script from another address', MAC, 'script', '10.0.0.99', bound, true, false],
    ['script without a lease (no DHCP ACK seen)', MAC, 'script', '10.0.0.50', undefined, true, false],
    ['script with an offer only', MAC, 'script', '10.0.0.50', { ...bound, state: 'offered' as const }, true, false],
    ['rootfs request', MAC, 'rootfs', '10.0.0.50', bound, true, false],
    ['proxyDHCP: the reserved address', MAC, 'script', '10.0.0.50', undefined, false, true],
    ['proxyDHCP: another address', MAC, 'script', '10.0.0.99', undefined, false, false],
    ['GRUB machine: its config', '52:54:00:00:00:02', 'config', '10.0.0.51', undefined, false, true],
    ['GRUB machine: an iPXE script request', '52:54:00:00:00:02', 'script', '10.0.0.51', undefined, false, false],
  ] as const)('%s', (_name, mac, request, address, lease, authoritative, want) => {
    expect(tokenDue(plan(mac, request), address, lease, authoritative)).toBe(want);
  });
});

describe('FileBootTokens', () => {
  it('a new boot supersedes the last, a token is spent once, and both survive a reopen', async () => {
    const a = await FileBootTokens.open(dir);
    const first = await a.issue(MAC, '10.0.0.50', 1000);
    const second = await a.issue(MAC, '10.0.0.50', 1000); // same millisecond: still a new counter
    expect(second.seq).toBe(first.seq + 1);
    expect(a.spend(MAC, first.seq, 'now').won).toBe(false);
    const win = a.spend(MAC, second.seq, '2026-12-02T07:00:00.000Z');
    const lose = a.spend(MAC, second.seq, 'later');
    expect([win.won, lose.won]).toEqual([true, false]);
    await win.durable;
    await a.close();
    const b = await FileBootTokens.open(dir);
    expect(b.current(MAC)).toEqual({ mac: MAC, seq: 1001, address: '10.0.0.50', spent: '2026-12-02T07:00:00.000Z' });
    expect(b.spend(MAC, 1001, 'again').won).toBe(false);
    await b.close();
  });

  it('the server compacts the file to one line per MAC once it grew past the threshold', async () => {
    const s = await FileBootTokens.open(join(dir, 'compact'), { compactAfter: 10 });
    for (let i = 0; i < 30; i++) await s.issue(MAC, '10.0.0.50', 10_000 + i);
    await s.close();
    expect(readFileSync(join(dir, 'compact/boots.jsonl'), 'utf8').trim().split('\n').length).toBeLessThanOrEqual(15);
    const t = await FileBootTokens.open(join(dir, 'compact'));
    expect(t.current(MAC)?.seq).toBe(10_029);
    await t.close();
  });

  it('a storm of boots at once: every record durable when its promise resolves, written together', async () => {
    const s = await FileBootTokens.open(join(dir, 'storm'));
    const macs = Array.from({ length: 300 }, (_, i) => `52:54:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`);
    const issued = await Promise.all(macs.map((m, i) => s.issue(m, '10.0.0.9', 20_000 + i)));
    expect(issued.map((r) => r.seq)).toEqual(macs.map((_, i) => 20_000 + i));
    const lines = readFileSync(join(dir, 'storm/boots.jsonl'), 'utf8').trim().split('\n');
    expect(lines.length).toBe(300); // on disk before the last promise resolved, none lost or torn
    await s.close();
    const t = await FileBootTokens.open(join(dir, 'storm'));
    expect(macs.every((m, i) => t.current(m)?.seq === 20_000 + i)).toBe(true);
    await t.close();
  });

  it('keeps at most maxMacs MACs (oldest boot dropped) and survives a torn last line', async () => {
    const s = await FileBootTokens.open(join(dir, 'cap'), { maxMacs: 3 });
    for (let i = 0; i < 5; i++) await s.issue(`52:54:00:00:01:0${i}`, '10.0.0.9', 5000 + i);
    expect(s.current('52:54:00:00:01:01')).toBeUndefined();
    expect(s.current('52:54:00:00:01:04')?.seq).toBe(5004);
    await s.close();
    appendFileSync(join(dir, 'cap/boots.jsonl'), '{"mac":"52:54:00:00:01:09","se');
    const t = await FileBootTokens.open(join(dir, 'cap'), { maxMacs: 3 });
    expect(t.current('52:54:00:00:01:04')?.seq).toBe(5004);
    await t.close();
  });
});
