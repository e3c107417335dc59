import { createClient } from "@connectrpc/connect";
import type { Certificate } from "../../core/certificate.js";
import { CertificateStoreService } from "../../gen/certgate/v1/certificate_store_pb.js";
import { createChangeNotifier, type StoreVerdict } from "../../core/store.js";
import { withSyncLookup } from "../../core/sync-lookup.js";
import type { RemoteStore, RemoteStoreOptions } from "./types.js";
import { nonNegative, timerDuration, transportsOf } from "./options.js";
import { clockOf } from "../../core/options.js";
import { observeRemoteStore } from "./remote-metrics.js";
import { createLruCache } from "../../core/lru-cache.js";
import { createCertificateFetcher } from "./fetch-certificate.js";

type Answer = Exclude<StoreVerdict, { kind: "error" }> & { readonly expiresAt: number };

/**
 * createLookupStore is `createRemoteStore` in lookup mode: VerifyCertificate
 * per certificate, with a bounded cache of answers and one request in flight
 * per certificate.
 */
export function createLookupStore(options: RemoteStoreOptions): RemoteStore {
  const clients = transportsOf(options).map((transport) => createClient(CertificateStoreService, transport));
  // The replica that answered last is asked first.
  let preferred = 0;
  const maxStaleMs = nonNegative("maxStaleMs", options.maxStaleMs, 0);
  const cacheTtlMs = nonNegative("cacheTtlMs", options.cacheTtlMs, 10_000);
  const negativeCacheTtlMs = nonNegative("negativeCacheTtlMs", options.negativeCacheTtlMs, 2_000);
  const cacheMaxEntries = nonNegative("cacheMaxEntries", options.cacheMaxEntries, 10_000);
  const requestTimeoutMs = timerDuration("requestTimeoutMs", options.requestTimeoutMs, 3000);
  const now = clockOf(options.clock);
  const notifier = createChangeNotifier();
  // Keyed by SHA-256 thumbprint; Map order is insertion order, so the first
  // key is the oldest answer.
  const cache = createLruCache<string, Answer>(cacheMaxEntries);
  const inFlight = new Map<string, Promise<StoreVerdict>>();
  const closing = new AbortController();
  let closed = false;
  const unobserve = observeRemoteStore(options, {
    get state() {
      return closed ? "closed" : "synced";
    },
  });

  // Asks each replica in turn, from the preferred one, until one answers.
  async function verifyOnAny(certificate: Certificate) {
    let failure: unknown;
    for (let i = 0; i < clients.length; i++) {
      const at = (preferred + i) % clients.length;
      try {
        const response = await clients[at]!.verifyCertificate(
          { subject: { case: "certificate", value: certificate.der } },
          { timeoutMs: requestTimeoutMs, signal: closing.signal },
        );
        preferred = at;
        return response;
      } catch (error) {
        failure = error;
        if (closing.signal.aborted) break;
      }
    }
    throw failure;
  }

  async function ask(certificate: Certificate): Promise<StoreVerdict> {
    const key = certificate.sha256;
    try {
      const response = await verifyOnAny(certificate);
      const t = now();
      const answer: Answer = response.admitted
        ? {
            kind: "admitted",
            entry: {
              id: response.certificate?.certificateId ?? certificate.sha256,
              thumbprint: certificate.sha256,
              labels: Object.freeze({ ...(response.certificate?.labels ?? {}) }),
            },
            expiresAt: t + cacheTtlMs,
          }
        : {
            kind: "refused",
            reason: response.reason === "" ? "not_allowed" : response.reason,
            expiresAt: t + negativeCacheTtlMs,
          };
      if (!closed) {
        cache.set(key, answer);
      }
      return answer;
    } catch (error) {
      // Unreachable: an answer that expired less than maxStaleMs ago may
      // stand in, until the end of that window.
      const old = cache.get(key);
      if (old !== undefined && maxStaleMs > 0 && now() - old.expiresAt <= maxStaleMs) {
        return { ...old, expiresAt: old.expiresAt + maxStaleMs };
      }
      return { kind: "error", error };
    }
  }

  // A verdict still fresh in the cache; undefined means asking the service.
  function cachedVerdict(certificate: Certificate): StoreVerdict | undefined {
    if (closed) return { kind: "error", error: new Error("remote store is closed") };
    const cached = cache.get(certificate.sha256);
    return cached !== undefined && now() < cached.expiresAt ? cached : undefined;
  }

  return {
    mode: "lookup",
    getCertificate: createCertificateFetcher({
      clients,
      preferred: () => preferred,
      timeoutMs: requestTimeoutMs,
      closing: closing.signal,
    }),
    get state() {
      return closed ? "closed" : "synced";
    },
    get revision() {
      return notifier.revision;
    },
    lookup: withSyncLookup((certificate: Certificate, signal: AbortSignal): Promise<StoreVerdict> => {
      const known = cachedVerdict(certificate);
      if (known !== undefined) {
        return Promise.resolve(known);
      }
      const key = certificate.sha256;
      let pending = inFlight.get(key);
      if (pending === undefined) {
        const started = ask(certificate).finally(() => {
          if (inFlight.get(key) === started) {
            inFlight.delete(key);
          }
        });
        pending = started;
        inFlight.set(key, pending);
      }
      // One caller giving up must not cancel the request that others share.
      return abortable(pending, signal);
    }, cachedVerdict),
    onChange: notifier.onChange,
    ready() {
      return closed ? Promise.reject(new Error("remote store is closed")) : Promise.resolve();
    },
    close() {
      if (!closed) {
        closed = true;
        unobserve();
        closing.abort();
        cache.clear();
        notifier.changed();
        notifier.clear();
      }
      return Promise.resolve();
    },
  };
}

function abortable(promise: Promise<StoreVerdict>, signal: AbortSignal | undefined): Promise<StoreVerdict> {
  if (signal === undefined) {
    return promise;
  }
  if (signal.aborted) {
    return Promise.resolve({ kind: "error", error: signal.reason });
  }
  return new Promise((resolve) => {
    const abort = () => resolve({ kind: "error", error: signal.reason });
    signal.addEventListener("abort", abort, { once: true });
    // A rejection too becomes a verdict: nothing here may end as an
    // unhandled rejection.
    void promise.then(
      (verdict) => {
        signal.removeEventListener("abort", abort);
        resolve(verdict);
      },
      (error: unknown) => {
        signal.removeEventListener("abort", abort);
        resolve({ kind: "error", error });
      },
    );
  });
}
