/**
 * Admission of TFTP read transfers: a global cap and a per-address cap that never lock new clients out.
 *
 * An RRQ costs the sender one datagram and the server a socket, an open file and retransmit timers until
 * the session gives up, so a burst of abandoned RRQs (a spoofed or broken sender that never ACKs) could
 * hold every slot while a real machine's ROM is refused. A session is "unconfirmed" until its client has
 * sent anything on the transfer socket; when the table is full, a new request takes over the oldest
 * unconfirmed slot of the address that holds the most slots, provided that address holds more than the
 * requester does. So a fresh client always gets in, a client mid-transfer is never displaced, and a
 * flood can only displace itself. Pure bookkeeping (no sockets), unit-tested.
 */
export interface Slot {
  readonly key: string;
  readonly address: string;
  /** Set once the client has answered on the transfer socket: it is then never evicted. */
  confirmed: boolean;
  /** Last time (ms, the caller's clock) the client was heard from; starts at admission. */
  heard: number;
  evicted: boolean;
  /** Ends the slot's session when it is evicted (set by the server once the session exists). */
  onEvict?: (reason: string) => void;
}

export type Admission = { ok: true; slot: Slot; evicted?: Slot } | { ok: false; reason: string };

export class SlotTable {
  private readonly slots = new Map<string, Slot>(); // insertion order = age
  private readonly perAddress = new Map<string, number>();

  constructor(private readonly max: number, private readonly maxPerAddress: number) {}

  get size(): number { return this.slots.size; }
  has(key: string): boolean { return this.slots.has(key); }
  countOf(address: string): number { return this.perAddress.get(address) ?? 0; }
  values(): IterableIterator<Slot> { return this.slots.values(); }

  admit(key: string, address: string, now: number): Admission {
    const n = this.countOf(address);
    let victim: Slot | undefined;
    if (n >= this.maxPerAddress) {
      // This address is at its cap: it may only replace one of its own requests it never followed up.
      victim = this.oldestUnconfirmed((s) => s.address === address);
      if (!victim) return { ok: false, reason: `${address} already has ${n} transfers` };
    } else if (this.slots.size >= this.max) {
      victim = this.busiestUnconfirmed(n);
      if (!victim) return { ok: false, reason: `all ${this.max} transfer slots are in use` };
    }
    if (victim) this.evict(victim, `slot needed by ${address}`);
    const slot: Slot = { key, address, confirmed: false, heard: now, evicted: false };
    this.slots.set(key, slot);
    this.perAddress.set(address, this.countOf(address) + 1);
    return victim ? { ok: true, slot, evicted: victim } : { ok: true, slot };
  }

  /** Free a slot when its transfer ends (a no-op for one already evicted). */
  release(slot: Slot): void {
    if (this.slots.get(slot.key) !== slot) return;
    this.slots.delete(slot.key);
    const left = this.countOf(slot.address) - 1;
    if (left > 0) this.perAddress.set(slot.address, left); else this.perAddress.delete(slot.address);
  }

  evict(slot: Slot, reason: string): void {
    this.release(slot);
    slot.evicted = true;
    slot.onEvict?.(reason);
  }

  private oldestUnconfirmed(match: (s: Slot) => boolean): Slot | undefined {
    for (const s of this.slots.values()) if (!s.confirmed && match(s)) return s;
    return undefined;
  }

  /** The oldest unconfirmed slot of the address holding the most slots, if it holds more than `than`. */
  private busiestUnconfirmed(than: number): Slot | undefined {
    let best: Slot | undefined;
    let bestCount = than;
    for (const s of this.slots.values()) {
      if (s.confirmed) continue;
      const c = this.countOf(s.address);
      if (c > bestCount) { best = s; bestCount = c; }
    }
    return best;
  }
}
