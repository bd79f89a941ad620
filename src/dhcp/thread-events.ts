/**
 * Boot events on their way from the DHCP thread to the main thread (src/dhcp/thread.ts): encoded on the
 * thread, decoded into the very events the listener emitted on the main thread, which records them.
 */
import type { BootStage, EventSink } from '../events/types.js';

export type ThreadEvent = Parameters<EventSink['emit']>[0];

/**
 * A batch's boot events as they cross to the main thread: each distinct string once (`strings`), each event
 * EVENT_FIELDS indexes into them (`fields`: at, mac, stage, host, address, detail; -1 for a field it lacks).
 * Four objects of five or six keys an exchange cost the structured clone on both threads more than the
 * events' own handling; numbers and a few strings (a MAC, its host and the time repeat) cost little.
 * An event with other keys (none the DHCP path makes) travels whole in `whole`: its `at` index is -1 - its place there.
 */
export interface EventBatch { strings: string[]; fields: number[]; whole?: ThreadEvent[] }
export const EVENT_FIELDS = 6;

/** Builds an EventBatch, one event at a time. */
export class EventEncoder {
  private strings: string[] = [];
  private readonly index = new Map<string, number>();
  private fields: number[] = [];
  private whole: ThreadEvent[] = [];

  get length(): number { return this.fields.length / EVENT_FIELDS; }

  private ref(s: string | undefined): number {
    if (s === undefined) return -1;
    let i = this.index.get(s);
    if (i === undefined) { i = this.strings.length; this.strings.push(s); this.index.set(s, i); }
    return i;
  }

  /** `at`: the event's time, when the event has none (the thread stamps it as it happens). */
  add(e: ThreadEvent, at: string): void {
    if (e.server !== undefined || e.verified !== undefined) {
      this.whole.push(e.at === undefined ? { ...e, at } : e);
      this.fields.push(-this.whole.length, -1, -1, -1, -1, -1);
      return;
    }
    this.fields.push(this.ref(e.at ?? at), this.ref(e.mac), this.ref(e.stage), this.ref(e.host), this.ref(e.address), this.ref(e.detail));
  }

  /** The batch so far; the encoder starts afresh. */
  take(): EventBatch {
    const b: EventBatch = { strings: this.strings, fields: this.fields, ...(this.whole.length ? { whole: this.whole } : {}) };
    this.strings = [];
    this.index.clear();
    this.fields = [];
    this.whole = [];
    return b;
  }
}

/** Each event of a batch, as the thread's listener emitted it (keys in its order: mac, host, stage, address, detail, at). */
export function decodeEvents(b: EventBatch, emit: (e: ThreadEvent & { at: string }) => void): void {
  const { strings: s, fields: f } = b;
  for (let i = 0; i < f.length; i += EVENT_FIELDS) {
    const at = f[i]!;
    if (at < 0) { emit(b.whole![-1 - at] as ThreadEvent & { at: string }); continue; }
    const mac = s[f[i + 1]!]!;
    const stage = s[f[i + 2]!] as BootStage;
    const host = f[i + 3]!;
    const address = f[i + 4]!;
    const detail = f[i + 5]!;
    const e: { mac: string; host?: string; stage: BootStage; address?: string; detail?: string; at?: string } = host >= 0 ? { mac, host: s[host]!, stage } : { mac, stage };
    if (address >= 0) e.address = s[address]!;
    if (detail >= 0) e.detail = s[detail]!;
    e.at = s[at]!;
    emit(e as ThreadEvent & { at: string });
  }
}

