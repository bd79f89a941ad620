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

/** An answer as kept: its bytes (outside the JS heap: nothing for the garbage collector to copy) and where it goes. */
export interface KeptAnswer { bytes: Uint8Array; yiaddr: string; type: number }

interface Entry { at: number; inv: Inventory; answer: KeptAnswer }

export class RepeatedAnswers {
  private readonly answers = new Map<string, Entry>();

  /**
   * `max` bounds what is kept, and with it the garbage collector's work: every answer kept outlives the
   * young generation (kept as packets, 4,096 of them made the DHCP thread's heap grow ~6 MB a second at
   * 1000 exchanges/s and its scavenges copy them; now a few small objects and an off-heap buffer each). 1,024 answers cover a storm of 300 machines' retransmissions (about two answers a
   * machine a second); under a flood only the last fraction of a second is answered from here.
   */
  constructor(private readonly windowMs: number, private readonly max = 1024) {}

  static key(mac: string, xid: number, type: number, length: number, viaProxyPort: boolean): string {
    return `${mac}/${xid}/${type}/${length}/${viaProxyPort ? 'p' : ''}`;
  }

  /** The answer made to this request less than windowMs ago on this snapshot, if any. */
  get(key: string, now: number, inv: Inventory): KeptAnswer | undefined {
    const e = this.answers.get(key);
    if (!e) return undefined;
    if (now - e.at < this.windowMs && e.inv === inv) return e.answer;
    this.answers.delete(key);
    return undefined;
  }

  put(key: string, now: number, inv: Inventory, reply: { packet: DhcpPacket; order: number[]; yiaddr: string; type: number }): void {
    if (this.windowMs <= 0) return;
    // Encoded once more into a buffer of its own (allocUnsafeSlow: not a slice of the shared pool, which a
    // kept slice would hold whole): ~300-600 bytes off the heap instead of the packet's objects on it.
    const bytes = Buffer.allocUnsafeSlow(encodedSize(reply.packet, reply.order));
    encodeDhcpInto(reply.packet, reply.order, bytes, 0);
    this.answers.delete(key); // re-inserted last: the Map's order is the age order
    this.answers.set(key, { at: now, inv, answer: { bytes, yiaddr: reply.yiaddr, type: reply.type } });
    // Oldest first out: at most `max` kept, and none older than the window once a put passes them.
    for (const [k, e] of this.answers) {
      if (this.answers.size <= this.max && now - e.at < this.windowMs) break;
      this.answers.delete(k);
    }
  }

  get size(): number {
    return this.answers.size;
  }
}
