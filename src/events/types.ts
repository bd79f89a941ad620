/**
 * Boot events: every stage of every machine, from DHCP to phone-home, in one timeline per MAC.
 * DHCP and TFTP emit through an EventSink; the HTTP side owns the store and the SSE stream.
 */
export type BootStage =
  | 'dhcp-discover'
  | 'dhcp-offer'
  | 'dhcp-request'
  | 'dhcp-ack'
  | 'dhcp-nak'
  | 'dhcp-decline'
  | 'dhcp-release'
  | 'dhcp-inform'
  | 'dhcp-ignore'
  | 'tftp-loader'
  | 'tftp-config'
  | 'tftp-file'
  | 'tftp-error'
  | 'http-script'
  | 'http-config'
  | 'http-loader'
  | 'http-kernel'
  | 'http-initrd'
  | 'http-image'
  | 'http-rootfs'
  | 'http-secret-denied' // a secret fetch refused (detail: the error code and why)
  | 'http-secrets' // the boot's secret bundle went out (its token is spent)
  | 'capture' // rolecast-capture from the booted box made a new image version (issue 18)
  | 'capture-refused'
  | 'initramfs' // phone-home from the common initramfs (detail: which step)
  | 'booted'
  | 'failed'
  | 'discovered' // a commissioning report was accepted (detail: inbox state)
  | 'adopted' // the box became a machine in machines.yaml (detail: host and role)
  | 'assign' // role changed by an operator (detail: old → new), when it leads to a power action
  | 'power-request' // a BMC power action asked for (detail: op and who)
  | 'power-done' // the BMC did it (detail: op and the state it reports)
  | 'power-failed' // the BMC call failed (detail: the error; never a guessed state)
  | 'console'; // the last screen of a boot's console (Serial over LAN), kept when the boot failed

export interface BootEvent {
  mac: string;
  stage: BootStage;
  /** ISO 8601 time the event was recorded (the store stamps it; emitters leave it out). */
  at: string;
  /** Host name when the MAC is known. */
  host?: string;
  /** Free-form detail: file name, address, reason. */
  detail?: string;
  /** Client address when known. */
  address?: string;
  /** Set on events another server of the site recorded (shared state): which one. */
  server?: string;
  /**
   * Phone-home only (initramfs, booted, failed as POSTed by a box): true when signed with the current
   * boot's key, false for an unsigned claim (anyone on the network could have sent it). Absent on what
   * rolecast itself observed (DHCP, TFTP, HTTP).
   */
  verified?: boolean;
}

export interface EventSink {
  emit(event: Omit<BootEvent, 'at'> & { at?: string }): void;
}

/** An EventSink that drops everything (tests, tools). */
export const nullSink: EventSink = { emit() {} };
