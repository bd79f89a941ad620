/**
 * What the rest of rolecast may ask of the DHCP lease store (src/dhcp/leases.ts implements it):
 * HTTP uses addressOf() to decide who may fetch a machine's secrets, and list() for GET /api/leases.
 */
export type LeaseState = 'offered' | 'bound' | 'declined' | 'released' | 'expired';

export interface LeaseRecord {
  mac: string;
  ip: string;
  state: LeaseState;
  /** ISO 8601 */
  expiresAt: string;
  host?: string;
}

export interface LeaseView {
  /** The address currently bound (or reserved and offered) to this MAC, if any. */
  addressOf(mac: string): string | undefined;
  list(): LeaseRecord[];
}
