/**
 * The state layer: everything rolecast remembers between requests sits behind these interfaces, so
 * transports and features never own a file or a map of their own (DESIGN.md "One state layer").
 * The file store (src/state/file/) is the embedded default; a PostgreSQL store implements the same
 * interfaces for several servers. Reads are synchronous from a cache each store keeps current (DHCP
 * and TFTP answer from them per packet); writes are durable when their promise resolves.
 */
import type { BootEvent, EventSink } from '../events/types.js';
import type { LeaseRecord } from '../leases.js';

export type { LeaseRecord };

export interface LeaseCommitOptions {
  /** The inventory network the address is on (leases are unique per network). */
  network?: string;
  /**
   * The address is the machine's reservation: no other MAC can hold it, so a shared store that cannot
   * be reached may still let it go out (queued), where a pool grant is refused.
   */
  reserved?: boolean;
}

/** DHCP leases. A grant is durable before the ACK leaves. */
export interface LeaseStore {
  /** The address bound (or offered) to this MAC now, if any. */
  addressOf(mac: string): string | undefined;
  list(): LeaseRecord[];
  /** This MAC's lease while it has not expired. */
  byMacLive(mac: string): LeaseRecord | undefined;
  /** The live lease (of any MAC) holding this address, if any. */
  holder(ip: string): LeaseRecord | undefined;
  /** The last lease this MAC had, even expired: clients like their old address back. */
  lastOf(mac: string): LeaseRecord | undefined;
  /** Where the next pool scan of this network should start (an allocation hint the store keeps). */
  poolHint(network: string): number | undefined;
  /**
   * Store one lease change. For a grant (offered/bound) the store refuses — resolves false, nothing
   * stored — when another MAC holds the address live: in a shared store another server may have taken
   * it after the handler looked. Resolves true once the change is durable — a store may resolve the
   * renewal of a reserved address whose bound lease is already durable before the new expiry is
   * (the grant cannot be lost, only the extension; no other MAC can take a reserved address), and an
   * offer of a reserved address at once (an offer is no promise; the ACK's bound lease waits).
   */
  commit(change: LeaseRecord, opts?: LeaseCommitOptions): Promise<boolean>;
  /** False while a shared store cannot be reached: new pool allocations are refused then. */
  canAllocate(): boolean;
  close(): Promise<void>;
}

/**
 * The boot-event log: one timeline per MAC, live subscribers (SSE). Events recorded by any process on
 * the same state (another server, a CLI command) reach timeline() and subscribers too.
 */
export interface EventLog extends EventSink {
  /** The kept timeline (the last events; fewer for MACs no host was ever heard with). */
  timeline(mac: string): BootEvent[];
  /** Every stored event of one MAC, oldest first, from the durable log (tools: `rolecast events`). */
  history(mac: string): Promise<BootEvent[]>;
  last(mac: string): BootEvent | undefined;
  subscribe(fn: (e: BootEvent) => void): () => void;
  close(): Promise<void>;
}

/** What each machine was last served (rootfs content hash): `rolecast diff`, "next boot changes". */
export interface ServedEntry {
  host?: string;
  role: string;
  hash: string;
  at: string;
}
export type ServedRecord = Record<string, ServedEntry>; // by MAC

export interface ServedStore {
  get(mac: string): ServedEntry | undefined;
  all(): Readonly<ServedRecord>;
  record(mac: string, entry: ServedEntry): Promise<void>;
  close(): Promise<void>;
}

/** Machines found by the commissioning image (discovery). `facts` is the report as validated. */
export type DiscoveredState = 'waiting' | 'adopted' | 'known-machine-new-nic';
export interface DiscoveredRecord {
  /** The MAC the report came from (the key). */
  mac: string;
  /** Every NIC MAC the box reported. */
  macs: string[];
  firstSeen: string;
  lastSeen: string;
  state: DiscoveredState;
  /** Host it was adopted as, or the known machine it matches. */
  host?: string;
  address?: string;
  facts: Record<string, unknown>;
  /** The MAC the last report came from (the NIC the box booted on last). */
  via?: string;
  /** The facts before the last report changed them: `rolecast facts <host>` shows what changed. */
  previous?: { at: string; facts: Record<string, unknown> };
}

export interface DiscoveredStore {
  list(): DiscoveredRecord[];
  get(mac: string): DiscoveredRecord | undefined;
  put(rec: DiscoveredRecord): Promise<void>;
  remove(mac: string): Promise<boolean>;
  close(): Promise<void>;
}

/** BMC power requests and their results. */
export type PowerOp = 'status' | 'on' | 'off' | 'cycle' | 'reset' | 'pxe';
export interface PowerAction {
  host: string;
  op: PowerOp;
  at: string;
  by?: string;
  ok: boolean;
  /** Power state read back, when the BMC said. Never guessed. */
  state?: 'on' | 'off';
  error?: string;
  ms?: number;
}

export interface PowerLog {
  record(a: PowerAction): Promise<void>;
  list(host?: string): PowerAction[];
  close(): Promise<void>;
}

/** One profile edit as the editor saw it. */
export interface EditOptions {
  /** Content hash (sha256 hex) of the file the caller based its edit on: refused if it changed since. */
  expectHash?: string;
  /** Who and what, for the profile log. */
  who?: string;
  what?: string;
}

/**
 * Profile edits (assign, boot-once, adopt, the API): serialised, validated as a whole profile set
 * before they are stored, and compare-and-swap on the file's content hash so no edit is lost.
 */
export interface ProfileEditor {
  /** `fn` gets the file's current text and returns the new text (or throws to refuse). */
  edit(file: string, fn: (text: string) => string, opts?: EditOptions): Promise<{ hash: string }>;
  /** The current text of one profile file and its content hash. */
  read(file: string): Promise<{ text: string; hash: string }>;
}

/**
 * Per-boot token records (issue 16, src/boot/token.ts): one per MAC, the latest boot's counter, the
 * address its script went to and whether its secrets were fetched. The token itself is never stored
 * (it is an HMAC over MAC and counter with this server's key), so these records are per server too:
 * every backend keeps them in the server's own data directory, beside server.key.
 */
export interface BootRecord {
  mac: string;
  /** The boot counter: issue time in ms, strictly increasing per MAC. */
  seq: number;
  /** The address the script or config that carried the token went to. */
  address: string;
  /** When the secret bundle went out (ISO 8601): the token is spent. */
  spent?: string;
}

export interface BootTokenStore {
  /** This MAC's latest boot, if it has one. */
  current(mac: string): BootRecord | undefined;
  /**
   * A new boot of this MAC, which supersedes every earlier one: its counter is `at` (ms), or one above
   * the last counter when the clock has not moved on. Durable when the promise resolves.
   */
  issue(mac: string, address: string, at: number): Promise<BootRecord>;
  /**
   * Spend this boot's token: decided at once (true exactly once per boot, false when spent already or
   * superseded), so two requests racing cannot both win; durable when the promise resolves.
   */
  spend(mac: string, seq: number, at: string): { won: boolean; durable: Promise<void> };
  close(): Promise<void>;
}

/** Everything a server keeps, one bundle, built once by the composition root. */
export interface State {
  leases: LeaseStore;
  events: EventLog;
  served: ServedStore;
  discovered: DiscoveredStore;
  power: PowerLog;
  profiles: ProfileEditor;
  /** Per-boot token records (per server: see BootTokenStore). */
  boots: BootTokenStore;
  /** Whether the state can be reached (a shared store; the file store is always up): /healthz, the log. */
  health?(): StateHealth;
  close(): Promise<void>;
}

export interface StateHealth {
  backend: 'file' | 'postgres';
  up: boolean;
  /** When the current up/down state began. */
  since?: string;
  error?: string;
  /** Boot events recorded here and not yet stored (while the database is unreachable). */
  queuedEvents?: number;
}
