/**
 * The in-memory view of leases that every lease store keeps (the file journal, the PostgreSQL cache):
 * a MAC has one current lease and an address one holder; a newer record for either replaces the older
 * one. Reads are what DHCP asks per packet, so they are map lookups.
 */
import type { LeaseRecord } from '../leases.js';

const isGrant = (r: LeaseRecord) => r.state === 'bound' || r.state === 'offered';

export class LeaseIndex {
  private readonly byMac = new Map<string, LeaseRecord>();
  private readonly byIp = new Map<string, LeaseRecord>();

  constructor(private readonly now: () => number) {}

  get size(): number {
    return this.byMac.size;
  }

  records(): IterableIterator<LeaseRecord> {
    return this.byMac.values();
  }

  clear(): void {
    this.byMac.clear();
    this.byIp.clear();
  }

  apply(r: LeaseRecord): void {
    const old = this.byMac.get(r.mac);
    if (old && this.byIp.get(old.ip) === old) this.byIp.delete(old.ip);
    const holder = this.byIp.get(r.ip);
    if (holder && holder.mac !== r.mac && this.byMac.get(holder.mac) === holder) this.byMac.delete(holder.mac);
    this.byMac.set(r.mac, r);
    this.byIp.set(r.ip, r);
  }

  // The last expiry parsed: DHCP asks about the same few leases again and again (holder, byMacLive per request).
  private parsedText = '';
  private parsedMs = NaN;

  live(r: LeaseRecord | undefined): r is LeaseRecord {
    if (!r) return false;
    if (r.expiresAt !== this.parsedText) { this.parsedMs = Date.parse(r.expiresAt); this.parsedText = r.expiresAt; }
    return this.parsedMs > this.now();
  }

  byMacLive(mac: string): LeaseRecord | undefined {
    const r = this.byMac.get(mac);
    return this.live(r) ? r : undefined;
  }

  /** The record on this address (live or not); `holder` is the live one. */
  at(ip: string): LeaseRecord | undefined {
    return this.byIp.get(ip);
  }

  /** The lease (of any MAC) holding this address now: live and not released. `r` overrides the indexed one. */
  holder(ip: string, r: LeaseRecord | undefined = this.byIp.get(ip)): LeaseRecord | undefined {
    return this.live(r) && r.state !== 'released' ? r : undefined;
  }

  /** The last lease this MAC had, even expired: clients like their old address back. */
  lastOf(mac: string): LeaseRecord | undefined {
    return this.byMac.get(mac);
  }

  addressOf(mac: string): string | undefined {
    const r = this.byMacLive(mac);
    return r && isGrant(r) ? r.ip : undefined;
  }

  list(): LeaseRecord[] {
    return [...this.byMac.values()].sort((a, b) => a.ip.localeCompare(b.ip, undefined, { numeric: true }));
  }
}
