/**
 * Live boot events over Server-Sent Events (GET /api/events). Events are applied in batches at most
 * every FLUSH_MS: a burst of thousands of events costs a few renders, not one each, so the page stays
 * responsive while a rack powers on together.
 */
export interface BootEvent {
  mac: string;
  stage: string;
  at: string;
  host?: string;
  detail?: string;
  address?: string;
  /** Phone-home: signed with the boot's key (true) or an unsigned claim (false). */
  verified?: boolean;
}

// The server names each SSE message after its stage (`event: dhcp-ack`): EventSource delivers named
// events only to listeners of that name, so listen for every stage rolecast emits.
const STAGES = [
  'dhcp-discover', 'dhcp-offer', 'dhcp-request', 'dhcp-ack', 'dhcp-nak', 'dhcp-decline', 'dhcp-release', 'dhcp-inform', 'dhcp-ignore',
  'tftp-loader', 'tftp-config', 'tftp-file', 'tftp-error', 'http-script', 'http-config', 'http-loader', 'http-kernel', 'http-initrd',
  'http-image', 'http-rootfs', 'http-secret-denied', 'http-secrets', 'initramfs', 'booted', 'failed', 'message',
  'assign', 'power-request', 'power-done', 'power-failed', 'console',
];

const FLUSH_MS = 150;

// RFC 4578 §2.1 option 93 values, as the server names them (src/boot/facts.ts ARCH_FIRMWARE).
const ARCH: Record<number, string> = { 0: 'bios', 6: 'uefi-ia32', 7: 'uefi-x64', 9: 'uefi-x64', 10: 'uefi-arm32', 11: 'uefi-arm64', 16: 'uefi-http-x64', 19: 'uefi-http-arm64' };

export type LiveState = 'connecting' | 'live' | 'reconnecting';

class Live {
  /** Latest event per MAC since the page loaded. */
  readonly latest = new Map<string, BootEvent>();
  /** Firmware seen per MAC since the page loaded, from the PXE vendor class of DHCP DISCOVERs. */
  readonly firmware = new Map<string, string>();
  state: LiveState = 'connecting';
  /** Events received in total (the test's burst check reads it). */
  received = 0;
  private pending: BootEvent[] = [];
  private timer: number | undefined;
  private readonly listeners = new Set<(batch: BootEvent[]) => void>();
  private source: EventSource | undefined;

  start(): void {
    if (this.source) return;
    const es = new EventSource('/api/events', { withCredentials: true });
    this.source = es;
    const onEvent = (m: MessageEvent<string>) => {
      try {
        this.pending.push(JSON.parse(m.data) as BootEvent);
      } catch {
        return; // a comment or a malformed line: nothing to show
      }
      this.timer ??= window.setTimeout(() => this.flush(), FLUSH_MS);
    };
    for (const s of STAGES) es.addEventListener(s, onEvent as EventListener);
    es.onopen = () => { this.state = 'live'; this.notify([]); };
    es.onerror = () => { this.state = 'reconnecting'; this.notify([]); };
  }

  private flush(): void {
    this.timer = undefined;
    const batch = this.pending;
    this.pending = [];
    this.received += batch.length;
    for (const e of batch) {
      this.latest.set(e.mac, e);
      const arch = e.stage === 'dhcp-discover' ? /Arch:(\d{5})/.exec(e.detail ?? '')?.[1] : undefined;
      if (arch !== undefined) this.firmware.set(e.mac, ARCH[Number(arch)] ?? 'unknown');
    }
    this.notify(batch);
  }

  private notify(batch: BootEvent[]): void {
    for (const fn of this.listeners) fn(batch);
  }

  subscribe(fn: (batch: BootEvent[]) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }
}

export const live = new Live();
(window as unknown as { rolecastLive: Live }).rolecastLive = live;
