/**
 * Per-boot tokens (issue 16). A token is minted when a machine fetches its boot script or config from
 * its own address, rides on the kernel command line (`rolecast.token=`), and is presented once by the
 * initramfs for the machine's secret files (GET /secrets/<mac>). Pure: key, MAC and counter in.
 *
 *   token = <seq in base36> "." <first 128 bits of HMAC-SHA256(server key, "boot-token\0<mac>\0<seq>"), base64url>
 *
 * `seq` is the boot's counter: the issue time in milliseconds, kept strictly increasing per MAC by the
 * boot store (src/state: BootTokenStore). It is both the boot's identity (a newer script fetch
 * supersedes every older token) and its age (the window), so the token itself is never stored: the
 * store keeps (MAC, seq, address, spent) and the HMAC proves the rest.
 *
 * The phone-home key is a second value per boot, derived the same way, that reaches the machine only
 * inside the secret bundle: /proc/cmdline (and so the token) is readable by every user of the booted
 * system, the bundle lands in root-only files.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { derive } from '../serverkey.js';
import type { LeaseRecord } from '../leases.js';
import type { BootTargetPlan } from './plan.js';

const TOKEN = /^([0-9a-z]{1,11})\.([A-Za-z0-9_-]{22})$/;

function mac16(key: Buffer, mac: string, seq: number): string {
  return Buffer.from(derive(key, 'boot-token', `${mac}\0${seq}`).slice(0, 32), 'hex').toString('base64url');
}

export function formatBootToken(key: Buffer, mac: string, seq: number): string {
  return `${seq.toString(36)}.${mac16(key, mac, seq)}`;
}

/** The boot counter a token names, when it is well formed and was made with this key for this MAC. */
export function parseBootToken(key: Buffer, mac: string, text: string): number | undefined {
  const m = TOKEN.exec(text);
  if (!m) return undefined;
  const seq = parseInt(m[1]!, 36);
  if (!Number.isSafeInteger(seq)) return undefined;
  const want = Buffer.from(mac16(key, mac, seq));
  const got = Buffer.from(m[2]!);
  return got.length === want.length && timingSafeEqual(got, want) ? seq : undefined;
}

/** The boot's phone-home key (64 hex characters), handed out only inside the secret bundle. */
export function phoneKey(key: Buffer, mac: string, seq: number): string {
  return derive(key, 'phone-home', `${mac}\0${seq}`);
}

/** HMAC-SHA256 of a phone-home body with the boot's key (its 64 characters as the HMAC key), hex. */
export function signEvent(phoneKeyHex: string, body: Buffer | string): string {
  return createHmac('sha256', phoneKeyHex).update(body).digest('hex');
}

/** Constant-time comparison of two hex signatures. */
export function signatureMatches(expected: string, got: string): boolean {
  const a = Buffer.from(expected);
  const b = Buffer.from(got.toLowerCase());
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * Whether this request mints a boot token (the decision beside planBoot, pure): it is the one that
 * hands out the boot config (planBoot's `mintsBootToken`), and it comes from the MAC's own address
 * after its own DHCP. With rolecast's DHCP that is the MAC's bound lease (its ACK came first); with
 * proxyDHCP or another DHCP server rolecast sees no ACK, and the machine's reserved address must be
 * the source (README, threat model).
 */
export function tokenDue(plan: BootTargetPlan, address: string, lease: LeaseRecord | undefined, dhcpAuthoritative: boolean): boolean {
  if (!plan.mintsBootToken) return false;
  if (dhcpAuthoritative) return lease?.state === 'bound' && lease.ip === address;
  return plan.machine !== undefined && plan.machine.ip === address;
}
