/**
 * The lease store's batches (src/state/pg/leases.ts): what a change is, its JSON for
 * rolecast_lease_commit, the notification rows of other servers' batches, and the offers a batch need
 * not send because their ACK follows in the same batch.
 */
import type { LeaseRecord } from '../types.js';

/** `answered`: its DHCP reply has already gone (a reserved machine's offer or renewal): nobody waits for it. */
export interface Change { rec: LeaseRecord; network: string; reserved: boolean; answered?: boolean }
export interface Waiter { change: Change; resolve(ok: boolean): void }

export function isGrant(r: LeaseRecord): boolean {
  return r.state === 'offered' || r.state === 'bound';
}

/**
 * A reserved grant answered already (its offer) followed in the same batch by a reserved grant of the
 * same MAC and address (its ACK, or the next renewal) is not sent: the later one stores the same
 * lease, and decides exactly as the pair would (for a reserved address the rules look only at other
 * MACs' rows, which are the same for both). A DHCP exchange's offer and ACK gathered into one batch
 * would otherwise put one MAC twice in a batch, which PostgreSQL then decides change by change
 * (migration 5's fast path wants each MAC once). The skipped waiter gets the later change's answer.
 */
export function supersede(all: Waiter[]): { batch: Waiter[]; superseded: Array<[Waiter, Promise<boolean>]> } {
  const next = new Map<string, Waiter & { answer?: Promise<boolean> }>();
  const keep: Waiter[] = [];
  const superseded: Array<[Waiter, Promise<boolean>]> = [];
  for (let i = all.length - 1; i >= 0; i--) {
    const w = all[i]!;
    const c = w.change;
    const key = `${c.network}|${c.rec.mac}`;
    const later = next.get(key);
    if (later && c.answered && c.reserved && isGrant(c.rec) && later.change.reserved && isGrant(later.change.rec) && later.change.rec.ip === c.rec.ip) {
      superseded.push([w, answerOf(later)]);
      continue;
    }
    keep.push(w);
    next.set(key, w);
  }
  return { batch: keep.reverse(), superseded };
}

/** A promise of what a waiter will be told (its resolve wrapped once). */
function answerOf(w: Waiter & { answer?: Promise<boolean> }): Promise<boolean> {
  if (!w.answer) {
    const resolve = w.resolve;
    w.answer = new Promise<boolean>((r) => { w.resolve = (ok) => { resolve(ok); r(ok); }; });
  }
  return w.answer;
}

export function toPayload(c: Change): Record<string, unknown> {
  return { network: c.network, mac: c.rec.mac, ip: c.rec.ip, state: c.rec.state, expiresAt: c.rec.expiresAt, host: c.rec.host ?? null, reserved: c.reserved };
}

/**
 * Another server's notification: the changes its batch stored, as [network, mac, ip, state, expiresAt,
 * host] rows (migration 4: one NOTIFY per batch). A malformed row is skipped.
 */
export function fromPayload(p: Record<string, unknown>): Array<[LeaseRecord, string]> {
  if (!Array.isArray(p.l)) return [];
  const out: Array<[LeaseRecord, string]> = [];
  for (const row of p.l as unknown[]) {
    if (!Array.isArray(row)) continue;
    const [network, mac, ip, state, expiresAt, host] = row as unknown[];
    if (typeof network !== 'string' || typeof mac !== 'string' || typeof ip !== 'string' || typeof state !== 'string' || typeof expiresAt !== 'string') continue;
    if (!['offered', 'bound', 'declined', 'released', 'expired'].includes(state)) continue;
    const when = new Date(expiresAt);
    if (Number.isNaN(when.getTime())) continue;
    out.push([{ mac, ip, state: state as LeaseRecord['state'], expiresAt: when.toISOString(), ...(typeof host === 'string' ? { host } : {}) }, network]);
  }
  return out;
}
