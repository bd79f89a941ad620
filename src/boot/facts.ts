/**
 * MachineFacts: what a client told us, in one shape, whichever protocol asked.
 * DHCP, TFTP and HTTP each turn their request into facts and call planBoot with them.
 */
export type Protocol = 'dhcp' | 'proxydhcp' | 'tftp' | 'http';

/**
 * Firmware families from the client system architecture type (RFC 4578 §2.1, option 93,
 * values from the IANA "Processor Architecture Types" registry).
 */
export type Firmware =
  | 'bios' // 0: x86 BIOS
  | 'uefi-ia32' // 6
  | 'uefi-x64' // 7 (EFI BC) and 9 (EFI x86-64); firmware disagree on which they send
  | 'uefi-arm32' // 10
  | 'uefi-arm64' // 11
  | 'uefi-http-x64' // 16: UEFI HTTP boot, x64
  | 'uefi-http-arm64' // 19: UEFI HTTP boot, arm64
  | 'unknown';

export const ARCH_FIRMWARE: Readonly<Record<number, Firmware>> = Object.freeze({
  0: 'bios',
  6: 'uefi-ia32',
  7: 'uefi-x64',
  9: 'uefi-x64',
  10: 'uefi-arm32',
  11: 'uefi-arm64',
  16: 'uefi-http-x64',
  19: 'uefi-http-arm64',
});

export function firmwareOf(arch: number | undefined): Firmware {
  if (arch === undefined) return 'unknown';
  return ARCH_FIRMWARE[arch] ?? 'unknown';
}

export function isHttpBootFirmware(f: Firmware): boolean {
  return f === 'uefi-http-x64' || f === 'uefi-http-arm64';
}

/**
 * What the request is for: the plan answers every one of them, and only the request that hands out
 * the boot configuration (the iPXE script, or the PXELINUX/GRUB config) consumes a boot-once target.
 */
export type BootRequest = 'dhcp' | 'loader' | 'script' | 'config' | 'image' | 'rootfs' | 'files';

export interface MachineFacts {
  /** Normalised MAC: lower-case, colon separated (see normaliseMac). */
  mac: string;
  /** Which transport asked. */
  protocol: Protocol;
  /** Option 93 client architecture, when sent. */
  arch?: number;
  /** True when the client is iPXE (user-class "iPXE" in RFC 3004 or plain form, or option 175 present). */
  ipxe: boolean;
  /** True when the client is a PXE/HTTP boot client (vendor class starts "PXEClient" or "HTTPClient"). */
  pxe: boolean;
  /** Option 60 vendor class identifier as sent. */
  vendorClass?: string;
  /** Option 97 client machine identifier as a canonical UUID string, when sent and not all zero. */
  uuid?: string;
  /** The client's source or assigned IPv4 address, when known. */
  address?: string;
  /** What this request fetches (DHCP when absent). */
  request?: BootRequest;
}

const MAC_RE = /^[0-9a-f]{2}([:-]?)[0-9a-f]{2}(?:\1[0-9a-f]{2}){4}$/i;

/**
 * Accepts aa:bb:cc:dd:ee:ff, aa-bb-cc-dd-ee-ff and aabbccddeeff (any case) and returns the
 * lower-case colon form, or undefined when the text is not a MAC.
 */
export function normaliseMac(text: string): string | undefined {
  const t = text.trim();
  if (!MAC_RE.test(t)) return undefined;
  const hex = t.replace(/[:-]/g, '').toLowerCase();
  return hex.match(/../g)!.join(':');
}

/** The pxelinux/grub style "01-aa-bb-cc-dd-ee-ff" name (01 = Ethernet ARP hardware type). */
export function macToDashed(mac: string): string {
  return `01-${mac.replace(/:/g, '-')}`;
}
