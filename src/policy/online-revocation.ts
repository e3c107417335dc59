// Online revocation: OCSP and CRL distribution points beside the CRL files,
// combined into one `RevocationChecker`. Status is fetched when a
// certificate is first seen and kept, so a decision reads it from memory.
import type { Certificate } from "../core/certificate.js";
import type { DistributionPointCrls } from "./crl-distribution-points.js";
import type { OcspStatusSource } from "./ocsp-status.js";
import type { CrlRevocationChecker, RevocationChecker, RevocationResult } from "./revocation.js";

/**
 * OcspMode is `validateRevocation.ocsp`: `"off"`, `"soft-fail"` (a
 * `revoked` answer refuses; no usable answer admits) or `"hard-fail"` (only
 * a `good` answer admits).
 */
export type OcspMode = "off" | "soft-fail" | "hard-fail";

/**
 * OnlineRevocationError is what `validateRevocation.onError` receives when
 * an online source gave nothing usable: `reason` is a short code for logs
 * and metrics (`timeout`, `unreachable`, `http_status`, `too_large`,
 * `too_many_redirects`, `unsupported_url`, `malformed`, `responder_error`,
 * `wrong_certificate`, `bad_signature`, `stale`, `not_yet_valid`,
 * `nonce_mismatch`, `no_responder`, `unsupported`), `source` is `"ocsp"` or
 * `"crl"`.
 */
export class OnlineRevocationError extends Error {
  readonly reason: string;
  readonly source: "ocsp" | "crl";
  constructor(source: "ocsp" | "crl", reason: string, why: string) {
    super(`${source === "ocsp" ? "OCSP" : "CRL distribution point"}: ${reason}: ${why}`);
    this.name = "OnlineRevocationError";
    this.source = source;
    this.reason = reason;
  }
}

/**
 * OnlineRevocationParts are the sources `createOnlineRevocationChecker`
 * combines; each may be absent.
 */
export interface OnlineRevocationParts {
  /** The CRL index (files and distribution points). */
  readonly crls: CrlRevocationChecker | undefined;
  /** Fetches the distribution point CRLs the index needs. */
  readonly distributionPoints: DistributionPointCrls | undefined;
  readonly ocsp: OcspStatusSource | undefined;
  readonly ocspMode: OcspMode;
}

/**
 * OnlineRevocationChecker is a `RevocationChecker` that may fetch.
 */
export interface OnlineRevocationChecker extends RevocationChecker {
  /** Waits for every fetch in flight (tests, benchmarks, shutdown). */
  settled(): Promise<void>;
  /** How many fetches were started (OCSP and CRL). */
  readonly fetches: number;
}

/**
 * createOnlineRevocationChecker combines the CRL index and OCSP: a
 * certificate revoked by either is refused with `revoked`; each configured
 * source must otherwise pass on its own terms (the CRL index as with CRL
 * files; OCSP by its mode). OCSP is asked about the client certificate (the
 * chain's first); CA certificates are checked against CRLs. A check waits
 * only for a status not yet known, at most the fetch timeout.
 */
export function createOnlineRevocationChecker(parts: OnlineRevocationParts): OnlineRevocationChecker {
  const { crls, distributionPoints, ocsp, ocspMode } = parts;
  const hard = ocspMode === "hard-fail";

  function crlPart(chain: readonly Certificate[], t: number): RevocationResult | Promise<RevocationResult> | undefined {
    if (crls === undefined) return undefined;
    if (distributionPoints === undefined) return crls.check(chain, t);
    const ready = distributionPoints.ensure(chain, t);
    if (typeof ready === "number") return recheck(crls.check(chain, t), ready);
    return ready.then(() => {
      const again = distributionPoints.ensure(chain, t);
      return recheck(crls.check(chain, t), typeof again === "number" ? again : t);
    });
  }

  function ocspPart(
    chain: readonly Certificate[],
    t: number,
  ): RevocationResult | Promise<RevocationResult> | undefined {
    if (ocsp === undefined || chain.length < 2) return undefined;
    const found = ocsp.status(chain[0] as Certificate, chain[1] as Certificate, t);
    return found instanceof Promise ? found.then(ocspResult) : ocspResult(found);
  }

  function ocspResult(found: Awaited<ReturnType<OcspStatusSource["status"]>>): RevocationResult {
    if (found.kind === "ok") {
      // Decided again at the refresh time, which starts the refresh, and
      // then until the refreshed status lands: a status that changes is seen
      // on the next call, and the decision needs no revision to watch.
      const expiresAt = found.recheckAt;
      if (found.value === "revoked") {
        return {
          kind: "revoked",
          reason: "revoked",
          why: "the OCSP responder says the certificate is revoked",
          expiresAt,
        };
      }
      if (found.value === "good" || !hard) return { kind: "good", expiresAt };
      return {
        kind: "unknown",
        reason: "ocsp_unavailable",
        why: "the OCSP responder does not know the certificate",
        expiresAt,
      };
    }
    if (!hard) return { kind: "good", expiresAt: found.retryAt };
    return {
      kind: "unknown",
      reason: "ocsp_unavailable",
      why: `no usable OCSP response (${found.reason}: ${found.why})`,
      expiresAt: found.retryAt,
    };
  }

  return {
    get revision() {
      return (crls?.revision ?? 0) + (ocsp?.revision ?? 0);
    },
    get fetches() {
      return (ocsp?.fetches ?? 0) + (distributionPoints?.fetches ?? 0);
    },
    async settled() {
      await Promise.all([ocsp?.settled(), distributionPoints?.settled()]);
    },
    check(chain, t) {
      const a = crlPart(chain, t);
      const b = ocspPart(chain, t);
      if (a instanceof Promise || b instanceof Promise) {
        return Promise.all([a, b]).then(([x, y]) => combine(x, y), failed);
      }
      return combine(a, b);
    },
  };
}

// A decision made from distribution point CRLs is made again from their
// refresh time (which starts the refresh), or a failed fetch's retry time.
function recheck(result: RevocationResult, at: number): RevocationResult {
  return at === Infinity ? result : { ...result, expiresAt: Math.min(result.expiresAt ?? Infinity, at) };
}

function failed(error: unknown): RevocationResult {
  return { kind: "unknown", reason: "crl_unavailable", why: `revocation could not be checked: ${String(error)}` };
}

function combine(a: RevocationResult | undefined, b: RevocationResult | undefined): RevocationResult {
  if (a?.kind === "revoked") return a;
  if (b?.kind === "revoked") return b;
  if (a !== undefined && a.kind !== "good") return b === undefined ? a : { ...a, expiresAt: minExpiry(a, b) };
  if (b !== undefined && b.kind !== "good") return a === undefined ? b : { ...b, expiresAt: minExpiry(a, b) };
  return { kind: "good", expiresAt: Math.min(a?.expiresAt ?? Infinity, b?.expiresAt ?? Infinity) };
}

function minExpiry(a: RevocationResult, b: RevocationResult): number {
  return Math.min(a.expiresAt ?? Infinity, b.expiresAt ?? Infinity);
}
