// How the decision asks the store: a look-up that always ends in a verdict
// (a timeout, a throw, a rejection or a malformed answer is an error verdict,
// which refuses), and the store's `get` for `issuerCertificateId`.
import type { Certificate } from "../core/certificate.js";
import type { IssuerCertificateSource } from "../policy/identity-match.js";
import type { CertificateStore, StoredCertificate, StoreVerdict } from "../core/store.js";
import { syncLookupOf } from "../core/sync-lookup.js";

/**
 * lookupStore asks the store about a certificate: synchronously when the
 * store answers from memory (`withSyncLookup`), else through `lookup`, giving up
 * after `timeoutMs` (and aborting the look-up's signal). It never throws or
 * rejects: whatever the store does, the outcome is a verdict.
 */
export function lookupStore(
  store: CertificateStore,
  certificate: Certificate,
  timeoutMs: number,
): StoreVerdict | Promise<StoreVerdict> {
  const lookupSync = syncLookupOf(store);
  if (lookupSync !== undefined) {
    let now: unknown;
    try {
      now = lookupSync(certificate);
    } catch (error) {
      return { kind: "error", error };
    }
    if (now !== undefined) return toVerdict(now);
  }
  return lookupAsync(store, certificate, timeoutMs);
}

function lookupAsync(store: CertificateStore, certificate: Certificate, timeoutMs: number): Promise<StoreVerdict> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<StoreVerdict>((resolve) => {
    timer = setTimeout(() => {
      const error = new Error(`certificate store did not answer within ${timeoutMs} ms`);
      controller.abort(error);
      resolve({ kind: "error", error });
    }, timeoutMs);
    timer.unref();
  });
  let verdict: Promise<unknown>;
  try {
    verdict = Promise.resolve(store.lookup(certificate, controller.signal));
  } catch (error) {
    verdict = Promise.resolve({ kind: "error", error });
  }
  return Promise.race([verdict, timeout]).then(
    (v) => {
      clearTimeout(timer);
      return toVerdict(v);
    },
    (error: unknown): StoreVerdict => {
      clearTimeout(timer);
      return { kind: "error", error };
    },
  );
}

/**
 * issuerSourceOf returns the store's `get`, when it has one, as the place
 * where `issuerCertificateId` identities look up their certificate.
 */
export function issuerSourceOf(store: CertificateStore | undefined): IssuerCertificateSource | undefined {
  const get = (store as { get?: unknown } | undefined)?.get;
  if (store === undefined || typeof get !== "function") {
    return undefined;
  }
  return {
    get: (id: string) => (get as (id: string) => Promise<StoredCertificate | undefined>).call(store, id),
    onChange: (listener) => store.onChange(listener),
  };
}

// A store's answer, checked: anything that is not a verdict is a broken
// store, which fails closed.
function toVerdict(verdict: unknown): StoreVerdict {
  const v = verdict as StoreVerdict | null | undefined;
  switch (v?.kind) {
    case "admitted":
      return { kind: "admitted", entry: v.entry, expiresAt: expiryOf(v) };
    case "refused":
      return { kind: "refused", reason: v.reason, expiresAt: expiryOf(v) };
    case "error":
      return v;
    default:
      return {
        kind: "error",
        error: new Error(`certificate store answered with an invalid verdict: ${describe(verdict)}`),
      };
  }
}

function expiryOf(verdict: unknown): number {
  const expiresAt = (verdict as { expiresAt?: unknown }).expiresAt;
  return typeof expiresAt === "number" ? expiresAt : Infinity;
}

function describe(value: unknown): string {
  if (typeof value !== "object" || value === null) {
    return String(value);
  }
  const kind = (value as { kind?: unknown }).kind;
  return `an object of kind ${typeof kind === "string" ? JSON.stringify(kind.slice(0, 40)) : String(kind)}`;
}
