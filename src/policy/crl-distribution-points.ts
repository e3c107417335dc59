// CRLs fetched from the distribution points of the certificates being
// checked (RFC 5280 section 4.2.1.13), over http(s): cached until their
// nextUpdate, refreshed ahead of it, and handed to the CRL index as a
// `CrlSet`, where they are verified with their issuer like CRL files.
import type { Certificate } from "../core/certificate.js";
import { childrenOf } from "../core/der.js";
import { decodePemOrDer } from "../core/pem-der.js";
import { parseCrl, type ParsedCrl } from "./crl.js";
import type { CrlSet } from "./crl-set.js";
import { readCertificateExtensions } from "./certificate-extensions.js";
import { boundedFetch, isFetchableUrl, type RevocationFetch } from "./online-fetch.js";
import { createOnlineStatusCache, type Fetched } from "./online-status-cache.js";
import { refreshTimeOf, withoutNextUpdateMs } from "./refresh-time.js";

const crlDistributionPointsOid = "2.5.29.31";

/**
 * crlDistributionPointsOf returns the http(s) URLs of a certificate's CRL
 * distribution points, in order. Distribution points limited to some
 * reasons or naming another CRL issuer (indirect CRLs) are left out:
 * certgate does not use such CRLs. It throws a `RangeError` on a malformed
 * encoding.
 */
export function crlDistributionPointsOf(certificate: Certificate): string[] {
  const der = certificate.der;
  const urls: string[] = [];
  for (const ext of readCertificateExtensions(der)) {
    if (ext.oid !== crlDistributionPointsOid) continue;
    for (const point of childrenOf(der, ext.value, 16)) {
      const parts = childrenOf(der, point);
      if (parts.some((p) => p.tag === 0x81 || p.tag === 0xa1 || p.tag === 0xa2)) continue;
      const name = parts.find((p) => p.tag === 0xa0);
      const fullName = name === undefined ? undefined : childrenOf(der, name).find((p) => p.tag === 0xa0);
      if (fullName === undefined) continue;
      for (const general of childrenOf(der, fullName)) {
        if (general.tag !== 0x86) continue;
        const url = Buffer.from(der.subarray(general.contentStart, general.end)).toString("latin1");
        if (isFetchableUrl(url)) urls.push(url);
      }
    }
  }
  return urls;
}

/**
 * DistributionPointOptions configures `createDistributionPointCrls`.
 */
export interface DistributionPointOptions {
  readonly fetch: RevocationFetch;
  readonly fetchTimeoutMs: number;
  readonly maxResponseBytes: number;
  readonly refreshBeforeMs: number;
  readonly clockSkewMs: number;
  /** The most CRLs kept. */
  readonly maxCrls: number;
  /** The most CRL bytes kept. */
  readonly maxBytes: number;
  /** How long a failed fetch is remembered before a request tries again, ms. */
  readonly retryAfterMs: number;
  /** Called with each failed fetch. */
  readonly onFailure: (url: string, reason: string, why: string) => void;
  /** Called when each fetch ends (see `OnlineStatusCacheOptions.onFetched`). By default, nothing. */
  readonly onFetched?: (result: string, ms: number) => void;
}

/**
 * DistributionPointCrls is the CRLs fetched from distribution points.
 */
export interface DistributionPointCrls {
  /** The fetched CRLs, for the CRL index. */
  readonly set: CrlSet;
  /**
   * Makes sure the CRL of every certificate of `chain` but the last is
   * fetched. When each is cached (fresh, or refreshing in the background,
   * or recently failed) it returns when a decision made from them must be
   * made again (see `CachedLookup.recheckAt`; Infinity without distribution
   * points); else a promise that resolves when the missing ones are fetched
   * or failed.
   */
  ensure(chain: readonly Certificate[], t: number): number | Promise<void>;
  /** How many fetches have been started. */
  readonly fetches: number;
  /** Waits for the fetches in flight. */
  settled(): Promise<void>;
}

/**
 * createDistributionPointCrls returns the `DistributionPointCrls` of a policy.
 */
export function createDistributionPointCrls(options: DistributionPointOptions): DistributionPointCrls {
  const cache = createOnlineStatusCache<string, ParsedCrl>({
    maxEntries: options.maxCrls,
    maxBytes: options.maxBytes,
    retryAfterMs: options.retryAfterMs,
    same: (a, b) => Buffer.from(a.tbs).equals(Buffer.from(b.tbs)),
    onFailure: options.onFailure,
    ...(options.onFetched !== undefined && { onFetched: options.onFetched }),
    // Each CRL that arrives for a URL changes the set.
    arrivalsChangeRevision: true,
  });
  const urlsOf = new WeakMap<Certificate, string | undefined>();

  async function load(url: string, t: number): Promise<Fetched<ParsedCrl>> {
    const fetched = await boundedFetch(
      url,
      { accept: "application/pkix-crl, application/x-pkcs7-crl;q=0.5, */*;q=0.1" },
      { fetch: options.fetch, timeoutMs: options.fetchTimeoutMs, maxBytes: options.maxResponseBytes },
    );
    if (fetched.kind === "failed") return fetched;
    const decoded = decodePemOrDer(fetched.bytes, { labels: ["X509 CRL", "CRL"], otherBlocks: "skip" });
    if (decoded.kind === "problem" || decoded.ders.length !== 1) {
      return { kind: "failed", reason: "malformed", why: `${url} did not answer one CRL` };
    }
    let crl: ParsedCrl;
    try {
      crl = parseCrl(decoded.ders[0] as Uint8Array, url);
    } catch (error) {
      return { kind: "failed", reason: "malformed", why: `${url}: ${(error as Error).message}` };
    }
    if (crl.unsupported !== undefined) {
      return { kind: "failed", reason: "unsupported", why: `${url}: ${crl.unsupported}` };
    }
    const next = crl.nextUpdate?.getTime();
    const until = next === undefined ? t + withoutNextUpdateMs : next + options.clockSkewMs;
    return {
      kind: "ok",
      value: crl,
      until,
      refreshAt: refreshTimeOf(t, until, options.refreshBeforeMs),
      bytes: fetched.bytes.length,
    };
  }

  const set: CrlSet = {
    get revision() {
      return cache.revision;
    },
    get crls() {
      return [...cache.values()];
    },
    onChange: () => () => undefined,
    close: () => Promise.resolve(),
  };

  function urlOf(certificate: Certificate): string | undefined {
    if (urlsOf.has(certificate)) return urlsOf.get(certificate);
    let url: string | undefined;
    try {
      url = crlDistributionPointsOf(certificate)[0];
    } catch {
      url = undefined; // unreadable extensions: no distribution point
    }
    urlsOf.set(certificate, url);
    return url;
  }

  return {
    set,
    get fetches() {
      return cache.fetches;
    },
    settled: () => cache.settled(),
    ensure(chain, t) {
      let waits: Promise<unknown>[] | undefined;
      let recheckAt = Infinity;
      for (let i = 0; i + 1 < chain.length; i++) {
        const url = urlOf(chain[i] as Certificate);
        if (url === undefined) continue;
        const found = cache.lookup(url, t, () => load(url, t));
        if (found instanceof Promise) (waits ??= []).push(found);
        else recheckAt = Math.min(recheckAt, found.kind === "ok" ? found.recheckAt : found.retryAt);
      }
      return waits === undefined ? recheckAt : Promise.all(waits).then(() => undefined);
    },
  };
}
