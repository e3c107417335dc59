// The OCSP status of client certificates: asked of the responder when a
// certificate is first seen, kept until the response's nextUpdate, and
// asked again in the background ahead of it.
import type { Certificate } from "../core/certificate.js";
import { createOcspRequest, ocspCertIdOf, ocspUrlsOf } from "./ocsp-request.js";
import { checkOcspResponse } from "./ocsp-response.js";
import { boundedFetch, type RevocationFetch } from "./online-fetch.js";
import { createOnlineStatusCache, type CachedLookup, type Fetched } from "./online-status-cache.js";
import { refreshTimeOf, withoutNextUpdateMs } from "./refresh-time.js";

/**
 * OcspStatus is what a responder said of one certificate.
 */
export type OcspStatus = "good" | "revoked" | "unknown";

/**
 * OcspStatusOptions configures `createOcspStatusSource`.
 */
export interface OcspStatusOptions {
  readonly fetch: RevocationFetch;
  /** Asks this responder instead of the certificate's AIA one, if set. */
  readonly responderUrl: string | undefined;
  readonly fetchTimeoutMs: number;
  readonly maxResponseBytes: number;
  readonly refreshBeforeMs: number;
  readonly clockSkewMs: number;
  /** Send a nonce. */
  readonly nonce: boolean;
  /** The most statuses kept. */
  readonly maxEntries: number;
  /** The most response bytes kept. */
  readonly maxBytes: number;
  /** How long a failed fetch is remembered before a request asks again, ms. */
  readonly retryAfterMs: number;
  /** Called with each failed fetch; `key` names the certificate. */
  readonly onFailure: (key: string, reason: string, why: string) => void;
  /** Called when each fetch ends (see `OnlineStatusCacheOptions.onFetched`). By default, nothing. */
  readonly onFetched?: (result: string, ms: number) => void;
}

/**
 * OcspStatusSource knows the OCSP status of certificates.
 */
export interface OcspStatusSource {
  /**
   * Changes when a refreshed status differs from the one it replaced. The
   * decision does not watch it: decisions made from a status are made again
   * from its refresh time on (see `CachedLookup.recheckAt`).
   */
  readonly revision: number;
  /**
   * The status of `certificate` issued by `issuer` at time `t`: at once
   * when cached (or recently failed), else a promise of the fetch.
   */
  status(
    certificate: Certificate,
    issuer: Certificate,
    t: number,
  ): CachedLookup<OcspStatus> | Promise<CachedLookup<OcspStatus>>;
  /** How many fetches have been started. */
  readonly fetches: number;
  /** Waits for the fetches in flight. */
  settled(): Promise<void>;
}

/**
 * createOcspStatusSource returns an `OcspStatusSource`: one POST of an
 * `application/ocsp-request` per certificate and refresh, the response
 * checked by `checkOcspResponse`.
 */
export function createOcspStatusSource(options: OcspStatusOptions): OcspStatusSource {
  const cache = createOnlineStatusCache<string, OcspStatus>({
    maxEntries: options.maxEntries,
    maxBytes: options.maxBytes,
    retryAfterMs: options.retryAfterMs,
    same: (a, b) => a === b,
    onFailure: options.onFailure,
    ...(options.onFetched !== undefined && { onFetched: options.onFetched }),
  });

  async function load(certificate: Certificate, issuer: Certificate, t: number): Promise<Fetched<OcspStatus>> {
    const url = options.responderUrl ?? ocspUrlsOf(certificate)[0];
    if (url === undefined) {
      return { kind: "failed", reason: "no_responder", why: "the certificate names no OCSP responder (AIA)" };
    }
    const certId = ocspCertIdOf(certificate, issuer);
    const request = createOcspRequest(certId, options.nonce);
    const started = performance.now();
    const fetched = await boundedFetch(
      url,
      { body: request.der, contentType: "application/ocsp-request", accept: "application/ocsp-response" },
      { fetch: options.fetch, timeoutMs: options.fetchTimeoutMs, maxBytes: options.maxResponseBytes },
    );
    if (fetched.kind === "failed") return fetched;
    const check = checkOcspResponse(fetched.bytes, {
      certId,
      issuer,
      nonce: request.nonce,
      // The time the response arrived: a responder stamps thisUpdate when
      // it answers, after the request was asked for.
      t: t + (performance.now() - started),
      clockSkewMs: options.clockSkewMs,
    });
    if (check.kind === "invalid") return { kind: "failed", reason: check.reason, why: `${url}: ${check.why}` };
    const until = check.nextUpdate === undefined ? t + withoutNextUpdateMs : check.nextUpdate + options.clockSkewMs;
    return {
      kind: "ok",
      value: check.status,
      until,
      refreshAt: refreshTimeOf(t, until, options.refreshBeforeMs),
      bytes: fetched.bytes.length,
    };
  }

  return {
    get revision() {
      return cache.revision;
    },
    get fetches() {
      return cache.fetches;
    },
    settled: () => cache.settled(),
    status(certificate, issuer, t) {
      // The serial alone is not unique across issuers.
      const key = `${issuer.sha256}:${certificate.serialNumber}`;
      return cache.lookup(key, t, () => load(certificate, issuer, t));
    },
  };
}
