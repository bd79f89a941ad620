/**
 * BMC power control: one driver interface over IPMI (ipmitool) and Redfish, and the one error type
 * every failure becomes. A driver never reports a state it did not read from the BMC: an auth failure,
 * a timeout or an answer it cannot parse is an error, never "on" or "off" (powerman#14).
 */
import { RolecastError, type ErrorCode } from '../errors.js';
import type { PowerOp } from '../state/types.js';

export type { PowerOp };
export type PowerState = 'on' | 'off';
export type BmcType = 'ipmi' | 'redfish';

/** A machine's BMC as the inventory gives it, with the password already resolved from secrets.yaml. */
export interface BmcTarget {
  type: BmcType;
  host: string;
  /** IPMI: UDP port (623); Redfish: TCP port (443 for https, 80 for http). */
  port?: number;
  user: string;
  /** The secret's value. Never logged, never in an API answer or an error message. */
  password: string;
  /** Redfish only: https (default) or http. */
  scheme: 'https' | 'http';
  /** Redfish over https: verify the BMC's certificate (most BMCs ship a self-signed one). */
  tlsVerify: boolean;
}

/** What a status read returned: `state` only when the BMC said on or off. */
export interface PowerReading {
  state?: PowerState;
  /** The BMC's own words (Redfish PowerState, ipmitool's line), for transitional states. */
  detail: string;
}

export interface PowerDriver {
  status(signal: AbortSignal): Promise<PowerReading>;
  on(signal: AbortSignal): Promise<void>;
  /** Hard off (IPMI chassis power down, Redfish ForceOff): diskless boxes lose nothing. */
  off(signal: AbortSignal): Promise<void>;
  cycle(signal: AbortSignal): Promise<void>;
  reset(signal: AbortSignal): Promise<void>;
  /** Next boot from the network, once (IPMI boot flags without persistent; Redfish Once + Pxe). */
  pxeOnce(signal: AbortSignal): Promise<void>;
}

/**
 * Why a BMC call failed. `retryable` says whether a second attempt may help and cannot do harm
 * (nothing reached the BMC, or the BMC said it was busy).
 */
export type BmcFailure = 'timeout' | 'unreachable' | 'auth' | 'busy' | 'refused' | 'protocol' | 'no-bmc';

const CODES: Record<BmcFailure, ErrorCode> = {
  timeout: 'E_BMC_TIMEOUT',
  unreachable: 'E_BMC_UNREACHABLE',
  auth: 'E_BMC_AUTH',
  busy: 'E_BMC_BUSY',
  refused: 'E_BMC_REFUSED',
  protocol: 'E_BMC_PROTOCOL',
  'no-bmc': 'E_NO_BMC',
};

export class BmcError extends RolecastError {
  constructor(readonly failure: BmcFailure, message: string, readonly retryable = false, options?: { cause?: unknown }) {
    super(CODES[failure], message, options);
  }
}

/** "10.0.0.211" or "10.0.0.211:8443", as people write it. */
export function bmcLabel(t: Pick<BmcTarget, 'host' | 'port'>): string {
  return t.port === undefined ? t.host : `${t.host}:${t.port}`;
}

export function seconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${(ms / 1000).toFixed(1)} s`;
}
