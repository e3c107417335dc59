/**
 * withoutNextUpdateMs is how long certgate uses an OCSP response or a CRL
 * that gives no nextUpdate (RFC 6960: newer information is always
 * available): 5 minutes.
 */
export const withoutNextUpdateMs = 5 * 60_000;

/**
 * refreshTimeOf returns when to fetch again a status fetched at `t` and
 * usable until `until`: `refreshBeforeMs` ahead of `until`, but not before
 * half of its remaining life, so that a short-lived status is not fetched
 * again and again.
 */
export function refreshTimeOf(t: number, until: number, refreshBeforeMs: number): number {
  return Math.max(until - refreshBeforeMs, t + (until - t) / 2);
}
