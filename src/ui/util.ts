/** Small shared pieces: htm bound to Preact, time formatting, stage classes. */
import { h } from 'preact';
import htm from 'htm';

export const html = htm.bind(h);

export function ago(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return '';
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86400)}d ago`;
}

export function clock(iso: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

/** Colour class of a stage: done, failed, in progress. */
export function stageClass(stage: string | null | undefined): string {
  if (!stage) return 'stage none';
  if (stage === 'booted') return 'stage ok';
  if (stage === 'failed' || stage === 'dhcp-nak' || stage === 'tftp-error' || stage === 'http-secret-denied' || stage === 'dhcp-ignore' || stage === 'power-failed' || stage === 'console') return 'stage bad';
  return 'stage busy';
}

/** The boot chain's steps, in order, and which step an event belongs to. */
export const STEPS = ['DHCP', 'loader', 'script', 'kernel', 'initrd', 'initramfs', 'rootfs', 'booted'] as const;

export function stepOf(stage: string): (typeof STEPS)[number] | 'failed' | undefined {
  if (stage.startsWith('dhcp-')) return 'DHCP';
  if (stage === 'tftp-loader' || stage === 'http-loader') return 'loader';
  if (stage === 'http-script' || stage === 'http-config' || stage === 'tftp-config') return 'script';
  if (stage === 'http-kernel') return 'kernel';
  if (stage === 'http-initrd') return 'initrd';
  if (stage === 'initramfs' || stage === 'http-secrets') return 'initramfs';
  if (stage === 'http-rootfs') return 'rootfs';
  if (stage === 'booted') return 'booted';
  if (stage === 'failed' || stage === 'tftp-error' || stage === 'http-secret-denied') return 'failed';
  return undefined;
}
