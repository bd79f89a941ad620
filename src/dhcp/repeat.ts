/**
 * Answers to requests a client sends again. A DHCP client retransmits with the same xid when no reply
 * reached it in time (RFC 2131 §4.1: 4 s, doubling; busybox udhcpc -T 1: every second), and under load a
 * retransmission may arrive while the first answer is a moment old. Deciding it again costs the whole
 * handler (plan, lease commit, events) and gives the same answer, so within `windowMs` of an answer to the
 * same MAC, xid, message type and request length (and on the same inventory snapshot) the listener sends
 * the answer it already made and records nothing new: the lease change and the events were recorded once.
 */
import type { Inventory } from '../inventory/types.js';
import { encodeDhcpInto, encodedSize, type DhcpPacket } from './packet.js';

/** An answer as kept: its bytes and where it goes. */
export interface KeptAnswer { bytes: Uint8Array; yiaddr: string; type: number }

/** Bytes of one kept answer in the arena; a longer one (rare: long boot URLs) gets a buffer of its own. */
const SLOT = 1024;

export class RepeatedAnswers {
  /** Key → slot; the Map's order is the age order (re-inserted on put). */
  private readonly slots = new Map<string, number>();
  // An answer's fields by slot, in flat arrays: kept answers outlive the young generation, and each object
  // kept per answer would be copied by every scavenge and then left to the old generation's collector.
  private readonly at: Float64Array;
  private readonly invs: Array<Inventory | undefined>;
  private readonly yiaddrs: string[];
  private readonly types: Uint8Array;
  private readonly lengths: Uint32Array;
  private readonly own: Array<Uint8Array | undefined>;
  private readonly free: number[];
  /** The answers' bytes, off the JS heap, one SLOT each: nothing allocated per answer. */
  private readonly arena: Buffer;

  /**
   * `max` bounds what is kept, and with it the memory: 1,024 answers cover a storm of 300 machines'
   * retransmissions (about two answers a machine a second); under a flood only the last fraction of a
   * second is answered from here.
   */
  constructor(private readonly windowMs: number, private readonly max = 1024) {
    const n = windowMs > 0 ? max : 0;
    this.at = new Float64Array(n);
    this.invs = new Array<Inventory | undefined>(n).fill(undefined);
    this.yiaddrs = new Array<string>(n).fill('');
    this.types = new Uint8Array(n);
    this.lengths = new Uint32Array(n);
    this.own = new Array<Uint8Array | undefined>(n).fill(undefined);
    this.free = Array.from({ length: n }, (_, i) => n - 1 - i);
    this.arena = Buffer.allocUnsafeSlow(n * SLOT);
  }

  static key(mac: string, xid: number, type: number, length: number, viaProxyPort: boolean): string {
    return `${mac}/${xid}/${type}/${length}/${viaProxyPort ? 'p' : ''}`;
  }

  private bytesOf(i: number): Uint8Array {
    return this.own[i] ?? this.arena.subarray(i * SLOT, i * SLOT + this.lengths[i]!);
  }

  private drop(key: string, i: number): void {
    this.slots.delete(key);
    this.invs[i] = undefined;
    this.own[i] = undefined;
    this.free.push(i);
  }

  /** The answer made to this request less than windowMs ago on this snapshot, if any. */
  get(key: string, now: number, inv: Inventory): KeptAnswer | undefined {
    const i = this.slots.get(key);
    if (i === undefined) return undefined;
    if (now - this.at[i]! < this.windowMs && this.invs[i] === inv) return { bytes: this.bytesOf(i), yiaddr: this.yiaddrs[i]!, type: this.types[i]! };
    this.drop(key, i);
    return undefined;
  }

  /**
   * Keeps this answer (encoded here, once) and returns its bytes: the listener sends these, so a reply is
   * encoded once whether or not it is kept. The bytes stay valid until this answer is dropped (the same key
   * kept again, or `max` newer answers): send them, or copy them, before the next put.
   * Undefined with a window of 0 (nothing kept).
   */
  put(key: string, now: number, inv: Inventory, reply: { packet: DhcpPacket; order: number[]; yiaddr: string; type: number }): Uint8Array | undefined {
    if (this.windowMs <= 0 || this.max <= 0) return undefined;
    const old = this.slots.get(key);
    if (old !== undefined) this.drop(key, old);
    // Oldest first out: at most `max` kept, and none older than the window once a put passes them.
    for (const [k, j] of this.slots) {
      if (this.slots.size < this.max && now - this.at[j]! < this.windowMs) break;
      this.drop(k, j);
    }
    const i = this.free.pop()!;
    const size = encodedSize(reply.packet, reply.order);
    // allocUnsafeSlow for a long one: not a slice of the shared pool, which a kept slice would hold whole.
    const own = size > SLOT ? Buffer.allocUnsafeSlow(size) : undefined;
    encodeDhcpInto(reply.packet, reply.order, own ?? this.arena, own ? 0 : i * SLOT);
    this.at[i] = now;
    this.invs[i] = inv;
    this.yiaddrs[i] = reply.yiaddr;
    this.types[i] = reply.type;
    this.lengths[i] = size;
    this.own[i] = own;
    this.slots.set(key, i);
    return this.bytesOf(i);
  }

  get size(): number {
    return this.slots.size;
  }
}
