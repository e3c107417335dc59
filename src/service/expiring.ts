import { Code, ConnectError } from "@connectrpc/connect";
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { parseCertificate } from "../core/certificate.js";
import { readValidity } from "../core/certificate-validity.js";
import { createLruCache } from "../core/lru-cache.js";
import type { StoredCertificate, WritableCertificateStore } from "../core/store.js";

/**
 * ExpiringPage is one page of a listing filtered by expiry.
 */
export interface ExpiringPage {
  /** The matching certificates, ordered by id. */
  readonly certificates: StoredCertificate[];
  /** The id the next page starts after, or undefined on the last page. */
  readonly nextAfter: string | undefined;
}

/**
 * ExpiryFilter lists the stored certificates that expire before a time.
 */
export interface ExpiryFilter {
  /**
   * Up to `size` certificates whose validity ends before `before` (epoch ms)
   * and that carry every one of `labels`, after `after` in id order. It examines at most `scanLimit` stored
   * certificates per call, so a page may be short, even empty, with a
   * `nextAfter` to go on from.
   */
  page(options: {
    after: string | undefined;
    size: number;
    before?: number | undefined;
    labels?: Readonly<Record<string, string>> | undefined;
  }): Promise<ExpiringPage>;
}

/**
 * ExpiryFilterOptions configures `createExpiryFilter`.
 */
export interface ExpiryFilterOptions {
  /** The store to list. */
  store: WritableCertificateStore;
  /** At most this many stored certificates examined per page. By default, 2000. */
  scanLimit?: number;
  /** How many expiry times to remember, by SHA-256. By default, 100000. */
  cacheSize?: number;
}

const batchSize = 500;

/**
 * createExpiryFilter filters a store's listing by expiry and labels in the
 * service, for every store: it passes both to the store's `list` as hints
 * (PostgreSQL answers from its not_after and labels indexes), then checks
 * each certificate, reading its
 * `notAfter` from the store or, failing that, from the DER (the validity
 * field alone, not a full parse). Expiry times are remembered by SHA-256, as
 * a DER never changes its validity. Certificates that do not parse have no
 * known expiry and are left out.
 */
export function createExpiryFilter(options: ExpiryFilterOptions): ExpiryFilter {
  const { store } = options;
  const scanLimit = options.scanLimit ?? 2000;
  const cache = createLruCache<string, number>(options.cacheSize ?? 100_000);

  function notAfterOf(stored: StoredCertificate): number | undefined {
    if (stored.notAfter !== undefined) {
      return stored.notAfter.getTime();
    }
    let time = cache.get(stored.sha256);
    if (time === undefined) {
      try {
        time = readValidity(stored.der).notAfter.getTime();
      } catch {
        // An encoding the light reader does not follow: the full parser decides.
        try {
          time = parseCertificate(stored.der).notAfter.getTime();
        } catch {
          return undefined;
        }
      }
      cache.set(stored.sha256, time);
    }
    return time;
  }

  return {
    async page({ after, size, before, labels }) {
      const certificates: StoredCertificate[] = [];
      let cursor = after;
      let scanned = 0;
      const hints = {
        ...(before === undefined ? {} : { expiresBefore: new Date(before) }),
        ...(labels === undefined ? {} : { labels }),
      };
      const wanted = labels === undefined ? [] : Object.entries(labels);
      const matches = (stored: StoredCertificate) => {
        if (wanted.some(([key, value]) => stored.labels[key] !== value)) return false;
        if (before === undefined) return true;
        const notAfter = notAfterOf(stored);
        return notAfter !== undefined && notAfter < before;
      };
      while (scanned < scanLimit) {
        const limit = Math.min(batchSize, scanLimit - scanned);
        const batch = await store.list({ after: cursor, limit, ...hints });
        for (const stored of batch) {
          scanned++;
          if (matches(stored)) {
            if (certificates.length === size) {
              // One more match than the page holds: there is a next page.
              return { certificates, nextAfter: cursor };
            }
            certificates.push(stored);
          }
          cursor = stored.id;
        }
        if (batch.length < limit) {
          return { certificates, nextAfter: undefined };
        }
      }
      // Examined as many as one call may: the client goes on from here.
      return { certificates, nextAfter: cursor };
    },
  };
}

// The range of google.protobuf.Timestamp: 0001-01-01 to 9999-12-31.
const minSeconds = -62_135_596_800n;
const maxSeconds = 253_402_300_799n;

/**
 * timestampMillis reads a request's timestamp as epoch milliseconds;
 * one outside the range of `google.protobuf.Timestamp` is `InvalidArgument`.
 */
export function timestampMillis(field: string, timestamp: Timestamp): number {
  if (
    timestamp.seconds < minSeconds ||
    timestamp.seconds > maxSeconds ||
    timestamp.nanos < 0 ||
    timestamp.nanos > 999_999_999
  ) {
    throw new ConnectError(`${field} is not a valid timestamp`, Code.InvalidArgument);
  }
  return Number(timestamp.seconds) * 1000 + Math.floor(timestamp.nanos / 1_000_000);
}
