// The online revocation options of `validateRevocation`, checked at
// start-up, and the sources they make.
import { createDistributionPointCrls, type DistributionPointCrls } from "./crl-distribution-points.js";
import { createOcspStatusSource, type OcspStatusSource } from "./ocsp-status.js";
import { isFetchableUrl, type RevocationFetch } from "./online-fetch.js";
import { OnlineRevocationError, type OcspMode } from "./online-revocation.js";
import type { RevocationOptions } from "./policy-options.js";
import type { RevocationMetrics } from "./revocation-metrics.js";

/**
 * OnlineOptions are the online revocation options with their defaults.
 */
export interface OnlineOptions {
  readonly ocsp: OcspMode;
  readonly crlDistributionPoints: boolean;
  readonly responderUrl: string | undefined;
  readonly fetchTimeoutMs: number;
  readonly maxResponseBytes: number;
  readonly refreshBeforeMs: number;
  readonly fetch: RevocationFetch | undefined;
}

const ocspModes: readonly OcspMode[] = ["off", "soft-fail", "hard-fail"];
const maxTimer = 2 ** 31 - 1;

/**
 * onlineLimits are the fixed bounds of the online caches: how many OCSP
 * statuses and distribution point CRLs are kept, their bytes, and how long
 * a failed fetch is remembered before a request fetches again.
 */
export const onlineLimits = {
  ocspEntries: 100_000,
  ocspBytes: 64 * 1024 * 1024,
  crls: 64,
  crlBytes: 64 * 1024 * 1024,
  retryAfterMs: 10_000,
} as const;

/**
 * checkOnlineOptions reads the online options of `validateRevocation`,
 * throwing a `TypeError` naming the option for a malformed one.
 */
export function checkOnlineOptions(o: RevocationOptions, where: string): OnlineOptions {
  const ocsp = o.ocsp ?? "off";
  if (!ocspModes.includes(ocsp)) {
    throw new TypeError(
      `certgate: ${where}.ocsp must be "off", "soft-fail" or "hard-fail", got ${JSON.stringify(ocsp)}`,
    );
  }
  if (o.crlDistributionPoints !== undefined && typeof o.crlDistributionPoints !== "boolean") {
    throw new TypeError(`certgate: ${where}.crlDistributionPoints must be a boolean`);
  }
  if (o.responderUrl !== undefined && (typeof o.responderUrl !== "string" || !isFetchableUrl(o.responderUrl))) {
    throw new TypeError(`certgate: ${where}.responderUrl must be an http or https URL`);
  }
  const number = (name: "fetchTimeoutMs" | "maxResponseBytes" | "refreshBeforeMs", min: number, fallback: number) => {
    const v = o[name];
    if (v === undefined) return fallback;
    if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > maxTimer) {
      throw new TypeError(
        `certgate: ${where}.${name} must be an integer between ${min} and ${maxTimer}, got ${String(v)}`,
      );
    }
    return v;
  };
  if (o.fetch !== undefined && typeof o.fetch !== "function") {
    throw new TypeError(`certgate: ${where}.fetch must be a function like globalThis.fetch`);
  }
  const crlDistributionPoints = o.crlDistributionPoints === true;
  if ((ocsp !== "off" || crlDistributionPoints) && o.fetch === undefined && typeof globalThis.fetch !== "function") {
    throw new TypeError(`certgate: ${where} fetches online but this Node has no global fetch: set ${where}.fetch`);
  }
  if (o.responderUrl !== undefined && ocsp === "off") {
    throw new TypeError(`certgate: ${where}.responderUrl is set but ocsp is "off"`);
  }
  return {
    ocsp,
    crlDistributionPoints,
    responderUrl: o.responderUrl,
    fetchTimeoutMs: number("fetchTimeoutMs", 1, 5000),
    maxResponseBytes: number("maxResponseBytes", 1, 10 * 1024 * 1024),
    refreshBeforeMs: number("refreshBeforeMs", 0, 10 * 60_000),
    fetch: o.fetch,
  };
}

/**
 * createOnlineSources makes the OCSP source and the distribution point
 * CRLs that the options turn on (neither when both are off).
 */
export function createOnlineSources(
  options: OnlineOptions,
  clockSkewMs: number,
  onError: ((error: Error) => void) | undefined,
  metrics: RevocationMetrics | undefined,
): { ocsp: OcspStatusSource | undefined; distributionPoints: DistributionPointCrls | undefined } {
  const report = onError ?? warnAtMostEveryMinute();
  const fetch: RevocationFetch = options.fetch ?? ((url, init) => globalThis.fetch(url, init));
  const common = {
    fetch,
    fetchTimeoutMs: options.fetchTimeoutMs,
    maxResponseBytes: options.maxResponseBytes,
    refreshBeforeMs: options.refreshBeforeMs,
    clockSkewMs,
    retryAfterMs: onlineLimits.retryAfterMs,
  };
  const failed = (source: "ocsp" | "crl") => (_key: string, reason: string, why: string) =>
    report(new OnlineRevocationError(source, reason, why));
  const fetched = (source: "ocsp" | "crl") =>
    metrics === undefined ? {} : { onFetched: (result: string, ms: number) => metrics.fetched(source, result, ms) };
  return {
    ocsp:
      options.ocsp === "off"
        ? undefined
        : createOcspStatusSource({
            ...common,
            responderUrl: options.responderUrl,
            nonce: true,
            maxEntries: onlineLimits.ocspEntries,
            maxBytes: onlineLimits.ocspBytes,
            onFailure: failed("ocsp"),
            ...fetched("ocsp"),
          }),
    distributionPoints: options.crlDistributionPoints
      ? createDistributionPointCrls({
          ...common,
          maxCrls: onlineLimits.crls,
          maxBytes: Math.max(onlineLimits.crlBytes, options.maxResponseBytes),
          onFailure: failed("crl"),
          ...fetched("crl"),
        })
      : undefined,
  };
}

// The default reporter: a process warning, at most one a minute for each
// source and reason, so that a responder that is down does not flood logs.
function warnAtMostEveryMinute(): (error: Error) => void {
  const last = new Map<string, number>();
  return (error) => {
    const key = error instanceof OnlineRevocationError ? `${error.source}:${error.reason}` : error.message;
    const now = Date.now();
    if ((last.get(key) ?? -Infinity) > now - 60_000) return;
    if (last.size > 100) last.clear();
    last.set(key, now);
    process.emitWarning(`certgate: ${error.message}`, { code: "CERTGATE_REVOCATION" });
  };
}
