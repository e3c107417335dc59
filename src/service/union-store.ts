import type { Certificate } from "../core/certificate.js";
import type { CertificateStore, StoreVerdict } from "../core/store.js";

/**
 * createUnionStore returns a `CertificateStore` that admits what any of
 * `stores` admits. When none admits and one of them failed, the verdict is
 * an `error` (fail closed: the failed store might have refused or admitted).
 * Its revision changes whenever the revision of any of them does. Closing it
 * closes none of `stores`.
 */
export function createUnionStore(stores: readonly CertificateStore[]): CertificateStore {
  if (stores.length === 1) {
    const only = stores[0] as CertificateStore;
    return {
      get revision() {
        return only.revision;
      },
      lookup: (certificate, signal) => only.lookup(certificate, signal),
      onChange: (listener) => only.onChange(listener),
      close: () => Promise.resolve(),
    };
  }
  let closed = false;
  // The union's own revision: it moves on whenever any store's revision
  // differs from the one last seen, whatever way that store counts.
  const seen = stores.map((store) => store.revision);
  let revision = 1;
  function current(): number {
    for (let i = 0; i < stores.length; i++) {
      const r = (stores[i] as CertificateStore).revision;
      if (r !== seen[i]) {
        seen[i] = r;
        revision++;
      }
    }
    return revision;
  }
  return {
    get revision() {
      return current();
    },
    async lookup(certificate: Certificate, signal: AbortSignal): Promise<StoreVerdict> {
      if (closed) {
        return { kind: "error", error: new Error("store is closed") };
      }
      const verdicts = await Promise.all(
        stores.map((store) =>
          Promise.resolve()
            .then(() => store.lookup(certificate, signal))
            .catch((error: unknown): StoreVerdict => ({ kind: "error", error })),
        ),
      );
      let failure: StoreVerdict | undefined;
      let refusal: StoreVerdict | undefined;
      let expiresAt = Infinity;
      for (const verdict of verdicts) {
        if (verdict.kind === "admitted") {
          return verdict;
        }
        if (verdict.kind === "error") {
          failure ??= verdict;
        } else {
          refusal ??= verdict;
          expiresAt = Math.min(expiresAt, verdict.expiresAt ?? Infinity);
        }
      }
      if (failure !== undefined) {
        return failure;
      }
      if (refusal !== undefined && refusal.kind === "refused" && expiresAt !== Infinity) {
        return { ...refusal, expiresAt };
      }
      return refusal ?? { kind: "refused", reason: "not_allowed" };
    },
    onChange(listener) {
      const removals = stores.map((store) => store.onChange(() => listener(current())));
      return () => {
        for (const remove of removals) {
          remove();
        }
      };
    },
    close() {
      closed = true;
      return Promise.resolve();
    },
  };
}
