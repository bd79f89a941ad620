/**
 * Answers to requests a client sends again. A DHCP client retransmits with the same xid when no reply
 * reached it in time (RFC 2131 §4.1: 4 s, doubling; busybox udhcpc -T 1: every second), and under load a
 * retransmission may arrive while the first answer is a moment old. Deciding it again costs the whole
 * handler (plan, lease commit, events) and gives the same answer, so within `windowMs` of an answer to the
 * same MAC, xid, message type and request length (and on the same inventory snapshot) the listener sends
 * the answer it already made and records nothing new: the lease change and the events were recorded once.
 *
 * Kept without a string or an object per answer: a request's identity is numbers (MAC, xid, type, length)
 * in typed arrays, found through an open-addressing table, and the answers' bytes sit in one arena. A Map
 * keyed by a string per request cost ~9 µs of the ~21 µs a request took in the handler path (the key's
 * concatenation and hashing, and the Map's rehashing under constant churn, whose tables the collector then
 * promoted).
 */
import type { Inventory } from '../inventory/types.js';
import { encodeDhcpInto, encodedSize, type DhcpPacket } from './packet.js';

/** An answer as kept: its bytes and where it goes. */
export interface KeptAnswer { bytes: Uint8Array; yiaddr: string; type: number }

/** What makes two requests the same one: the client's hardware address (its first 6 bytes), xid, type, length, port. */
export interface RequestId { chaddr: Uint8Array; xid: number; type: number; length: number; viaProxyPort: boolean }

/** Bytes of one kept answer in the arena; a longer one (rare: long boot URLs) gets a buffer of its own. */
const SLOT = 1024;
const EMPTY = 0;

export class RepeatedAnswers {
  // Entry i (a ring slot: the oldest is overwritten first) by field.
  private readonly macHi: Uint16Array;
  private readonly macLo: Uint32Array;
  private readonly xids: Uint32Array;
  /** type | length << 8 | proxy << 24. */
  private readonly kinds: Uint32Array;
  private readonly at: Float64Array;
  private readonly lengths: Uint32Array;
  private readonly types: Uint8Array;
  /** Where entry i sits in the table, -1 when it is not in it. */
  private readonly where: Int32Array;
  /**
   * The snapshot each answer was made on, as a number: an entry holds no reference to a snapshot, so one
   * replaced by a reload is not kept alive by answers nobody asks for again (a whole inventory per
   * snapshot, for as long as the ring took to wrap: forever on a quiet network).
   */
  private readonly gens: Uint32Array;
  private readonly genOf = new WeakMap<Inventory, number>();
  private lastInv: WeakRef<Inventory> | undefined;
  private lastGen = 0;
  private nextGen = 1;
  private readonly yiaddrs: string[];
  private readonly own: Array<Uint8Array | undefined>;
  /** Open addressing, linear probing: entry + 1, EMPTY for a free place. Twice the entries, a power of two. */
  private readonly table: Int32Array;
  private readonly mask: number;
  private readonly arena: Buffer;
  private next = 0;
  private count = 0;

  /**
   * `max` bounds what is kept, and with it the memory: 1,024 answers cover a storm of 300 machines'
   * retransmissions (about two answers a machine a second); under a flood only the last fraction of a
   * second is answered from here.
   */
  constructor(private readonly windowMs: number, private readonly max = 1024) {
    const n = windowMs > 0 ? Math.max(0, max) : 0;
    this.macHi = new Uint16Array(n);
    this.macLo = new Uint32Array(n);
    this.xids = new Uint32Array(n);
    this.kinds = new Uint32Array(n);
    this.at = new Float64Array(n);
    this.lengths = new Uint32Array(n);
    this.types = new Uint8Array(n);
    this.where = new Int32Array(n).fill(-1);
    this.gens = new Uint32Array(n);
    this.yiaddrs = new Array<string>(n).fill('');
    this.own = new Array<Uint8Array | undefined>(n).fill(undefined);
    let size = 2;
    while (size < 2 * n) size *= 2;
    this.table = new Int32Array(n ? size : 0);
    this.mask = size - 1;
    this.arena = Buffer.allocUnsafeSlow(n * SLOT);
  }

  // The request asked about, as numbers (set by key(): no array or object per call).
  private kHi = 0;
  private kLo = 0;
  private kXid = 0;
  private kKind = 0;

  private key(id: RequestId): void {
    const c = id.chaddr;
    this.kHi = ((c[0] ?? 0) << 8) | (c[1] ?? 0);
    this.kLo = (((c[2] ?? 0) << 24) | ((c[3] ?? 0) << 16) | ((c[4] ?? 0) << 8) | (c[5] ?? 0)) >>> 0;
    this.kXid = id.xid >>> 0;
    this.kKind = ((id.type & 255) | ((id.length & 0xffff) << 8) | (id.viaProxyPort ? 1 << 24 : 0)) >>> 0;
  }

  private home(hi: number, lo: number, xid: number, kind: number): number {
    let h = Math.imul(xid ^ lo, 0x9e3779b1) ^ Math.imul(hi ^ kind, 0x85ebca6b);
    h ^= h >>> 15;
    return h & this.mask;
  }

  /** The entry of the request key() set, or -1. */
  private find(): number {
    if (!this.table.length) return -1;
    const hi = this.kHi;
    const lo = this.kLo;
    const xid = this.kXid;
    const kind = this.kKind;
    for (let p = this.home(hi, lo, xid, kind); ; p = (p + 1) & this.mask) {
      const e = this.table[p]! - 1;
      if (e < 0) return -1;
      if (this.xids[e] === xid && this.macLo[e] === lo && this.macHi[e] === hi && this.kinds[e] === kind) return e;
    }
  }

  /** Takes entry e out of the table (backward-shift deletion: no tombstones to pile up). */
  private remove(e: number): void {
    let p = this.where[e]!;
    if (p < 0) return;
    this.where[e] = -1;
    this.gens[e] = 0;
    this.own[e] = undefined;
    this.count--;
    this.table[p] = EMPTY;
    for (let q = (p + 1) & this.mask; ; q = (q + 1) & this.mask) {
      const f = this.table[q]! - 1;
      if (f < 0) return;
      const h = this.home(this.macHi[f]!, this.macLo[f]!, this.xids[f]!, this.kinds[f]!);
      // f stays when its home is in (p, q], cyclically (probing from its home reaches q without passing p);
      // else it moves back into the hole at p.
      const stays = p <= q ? h > p && h <= q : h > p || h <= q;
      if (!stays) {
        this.table[p] = f + 1;
        this.where[f] = p;
        this.table[q] = EMPTY;
        p = q;
      }
    }
  }

  /** The snapshot's number (the last one asked about is remembered weakly: a lookup per request saved). */
  private gen(inv: Inventory): number {
    if (this.lastInv?.deref() === inv) return this.lastGen;
    let g = this.genOf.get(inv);
    if (g === undefined) { g = this.nextGen++; this.genOf.set(inv, g); }
    this.lastInv = new WeakRef(inv);
    this.lastGen = g;
    return g;
  }

  private bytesOf(i: number): Uint8Array {
    return this.own[i] ?? this.arena.subarray(i * SLOT, i * SLOT + this.lengths[i]!);
  }

  /** The answer made to this request less than windowMs ago on this snapshot, if any. */
  get(id: RequestId, now: number, inv: Inventory): KeptAnswer | undefined {
    this.key(id);
    const e = this.find();
    if (e < 0) return undefined;
    if (now - this.at[e]! < this.windowMs && this.gens[e] === this.gen(inv)) return { bytes: this.bytesOf(e), yiaddr: this.yiaddrs[e]!, type: this.types[e]! };
    this.remove(e);
    return undefined;
  }

  /**
   * Keeps this answer (encoded here, once) and returns its bytes: the listener sends these, so a reply is
   * encoded once whether or not it is kept. The bytes stay valid until this answer is dropped (the same
   * request kept again, or `max` newer answers): send them, or copy them, before the next put.
   * Undefined with a window of 0 (nothing kept).
   */
  put(id: RequestId, now: number, inv: Inventory, reply: { packet: DhcpPacket; order: number[]; yiaddr: string; type: number }): Uint8Array | undefined {
    if (!this.table.length) return undefined;
    this.key(id);
    const { kHi: hi, kLo: lo, kXid: xid, kKind: kind } = this;
    const old = this.find();
    if (old >= 0) this.remove(old);
    // The ring's next entry is the oldest kept: out it goes.
    const i = this.next;
    this.next = (i + 1) % this.at.length;
    this.remove(i);
    const size = encodedSize(reply.packet, reply.order);
    // allocUnsafeSlow for a long one: not a slice of the shared pool, which a kept slice would hold whole.
    const own = size > SLOT ? Buffer.allocUnsafeSlow(size) : undefined;
    encodeDhcpInto(reply.packet, reply.order, own ?? this.arena, own ? 0 : i * SLOT, size);
    this.macHi[i] = hi;
    this.macLo[i] = lo;
    this.xids[i] = xid;
    this.kinds[i] = kind;
    this.at[i] = now;
    this.gens[i] = this.gen(inv);
    this.yiaddrs[i] = reply.yiaddr;
    this.types[i] = reply.type;
    this.lengths[i] = size;
    this.own[i] = own;
    let p = this.home(hi, lo, xid, kind);
    while (this.table[p] !== EMPTY) p = (p + 1) & this.mask;
    this.table[p] = i + 1;
    this.where[i] = p;
    this.count++;
    return this.bytesOf(i);
  }

  /** Answers kept (some may be past the window: they go as newer ones come, or when asked for). */
  get size(): number {
    return this.count;
  }
}
