/**
 * At which level a boot event is logged: at info one line per boot stage (an ACK, a loader, a script, a
 * kernel...), never one per packet. The per-packet DHCP steps before an ACK are debug; so is a DHCP stage
 * the same MAC reached less than REPEAT_MS before: a client ACKed several times a second is a retry loop or
 * a load test, not a boot's next stage (PXE ROM, iPXE and the initramfs ask seconds apart). Every event
 * still goes to the machine's timeline; only the log line moves to debug.
 */
import type { BootEvent } from './types.js';

const PER_PACKET_STAGES: ReadonlySet<string> = new Set(['dhcp-discover', 'dhcp-offer', 'dhcp-request', 'dhcp-inform']);
export const REPEAT_MS = 1000;
/** MACs remembered; past this the memory starts afresh (a flood of invented MACs cannot grow it). */
const MAX_MACS = 10_000;

export class EventLogLevels {
  /** MAC → its last DHCP stage logged at info, and when. */
  private readonly last = new Map<string, { stage: string; at: number }>();

  level(e: Pick<BootEvent, 'mac' | 'stage'>, now: number): 'debug' | 'info' {
    if (PER_PACKET_STAGES.has(e.stage)) return 'debug';
    if (!e.stage.startsWith('dhcp-')) return 'info';
    const prev = this.last.get(e.mac);
    if (prev && prev.stage === e.stage && now - prev.at < REPEAT_MS) return 'debug';
    if (prev) { prev.stage = e.stage; prev.at = now; } else {
      if (this.last.size >= MAX_MACS) this.last.clear();
      this.last.set(e.mac, { stage: e.stage, at: now });
    }
    return 'info';
  }
}
