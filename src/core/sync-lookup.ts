import type { Certificate } from "./certificate.js";
import type { CertificateStore, StoreVerdict } from "./store.js";

/**
 * SyncLookup answers a look-up from memory, or says undefined when only the
 * store's `lookup` can answer. Like `lookup`, it never throws (a throw is
 * taken as an `error` verdict).
 */
export type SyncLookup = (certificate: Certificate) => StoreVerdict | undefined;

const syncTwin = Symbol("certgate.syncLookup");

/**
 * withSyncLookup gives a store's `lookup` function a synchronous twin that
 * answers from memory: certgate asks the twin first and calls `lookup` only
 * when it answers undefined. On a new connection that saves the look-up's
 * promise, timer and abort signal. The twin hangs on the function itself, so
 * a wrapper that replaces `lookup` (`{ ...store, lookup: mine }`) drops it
 * and is always asked: a spread store cannot skip its wrapper's checks.
 */
export function withSyncLookup<F extends CertificateStore["lookup"]>(lookup: F, lookupSync: SyncLookup): F {
  Object.defineProperty(lookup, syncTwin, { value: lookupSync, enumerable: false });
  return lookup;
}

/**
 * syncLookupOf returns the synchronous twin of a store's `lookup` (see
 * `withSyncLookup`), or undefined.
 */
export function syncLookupOf(store: CertificateStore): SyncLookup | undefined {
  const lookup = store.lookup as unknown as { [syncTwin]?: unknown } | undefined;
  const twin = typeof lookup === "function" ? lookup[syncTwin] : undefined;
  return typeof twin === "function" ? (twin as SyncLookup) : undefined;
}

/**
 * lookupFromMemory returns the `lookup` of a store that always answers from
 * memory: `lookupSync` behind a promise, with `lookupSync` as its twin.
 */
export function lookupFromMemory(lookupSync: (certificate: Certificate) => StoreVerdict): CertificateStore["lookup"] {
  return withSyncLookup((certificate) => Promise.resolve(lookupSync(certificate)), lookupSync);
}
