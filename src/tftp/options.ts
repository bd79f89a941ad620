/**
 * Option negotiation for a read (RFC 2347): blksize (RFC 2348), tsize and timeout (RFC 2349),
 * windowsize (RFC 7440). Unknown options are left out of the OACK, as the RFC allows; values out of
 * range are clamped where the RFC lets the server answer smaller, otherwise ignored.
 */
export interface Negotiated {
  blksize: number;
  windowsize: number;
  /** Per-retransmit timeout in ms. */
  timeoutMs: number;
  /** Options to acknowledge; empty = no OACK, the transfer starts with DATA 1 (RFC 1350 behaviour). */
  oack: Record<string, string>;
}

export interface Limits {
  maxBlksize: number;
  maxWindowsize: number;
  timeoutMs: number;
  /** Largest timeout option (seconds) acknowledged; RFC 2349 allows up to 255. */
  maxTimeoutS: number;
}

function int(v: string | undefined): number | undefined {
  if (v === undefined || !/^[0-9]{1,9}$/.test(v)) return undefined;
  return Number(v);
}

export function negotiate(requested: Record<string, string>, size: number, limits: Limits): Negotiated {
  const n: Negotiated = { blksize: 512, windowsize: 1, timeoutMs: limits.timeoutMs, oack: {} };
  const blk = int(requested.blksize);
  // RFC 2348: 8..65464 octets; the server may answer with a smaller value (MTU-safe cap).
  if (blk !== undefined && blk >= 8) {
    n.blksize = Math.min(blk, 65464, limits.maxBlksize);
    n.oack.blksize = String(n.blksize);
  }
  // RFC 2349: a read request carries tsize 0; the server answers with the file size.
  if (requested.tsize !== undefined && int(requested.tsize) !== undefined) n.oack.tsize = String(size);
  const t = int(requested.timeout);
  // RFC 2349: 1..255 s, and the OACK must carry the client's value or leave the option out. A long timeout
  // (with the session's back-off) would keep an abandoned request's slot for hours: above the cap, leave
  // it out and use our own timeout.
  if (t !== undefined && t >= 1 && t <= Math.min(255, limits.maxTimeoutS)) {
    n.timeoutMs = t * 1000;
    n.oack.timeout = String(t);
  }
  const w = int(requested.windowsize);
  // RFC 7440: 1..65535; the server may answer smaller.
  if (w !== undefined && w >= 1) {
    n.windowsize = Math.min(w, 65535, limits.maxWindowsize);
    n.oack.windowsize = String(n.windowsize);
  }
  return n;
}
