import type { Certificate } from "../core/certificate.js";
import { normalizeThumbprint, thumbprintsEqual } from "../core/thumbprint.js";
import { createChangeNotifier, type CertificateStore, type StoreVerdict } from "../core/store.js";
import { lookupFromMemory } from "../core/sync-lookup.js";

/**
 * createThumbprintStore returns a `CertificateStore` that admits exactly the
 * certificates whose SHA-1 or SHA-256 thumbprint is pinned, like a gateway's
 * "thumbprint equals" policy.
 *
 * Thumbprints are accepted as people paste them (see `normalizeThumbprint`);
 * SHA-1 and SHA-256 may be mixed. A malformed thumbprint or an empty list
 * throws here, naming the problem: a typo must not become a silent deny-all.
 * Every pinned thumbprint is compared in constant time on each look-up.
 *
 * @example
 * const store = createThumbprintStore("3A:F2:...:9C");
 */
export function createThumbprintStore(thumbprints: string | Iterable<string>): CertificateStore {
  const list = typeof thumbprints === "string" ? [thumbprints] : [...thumbprints];
  if (list.length === 0) {
    throw new TypeError("createThumbprintStore() needs at least one thumbprint");
  }
  const pins = new Set<string>();
  for (const text of list) {
    pins.add(normalizeThumbprint(text));
  }
  const sha1 = [...pins].filter((t) => t.length === 40);
  const sha256 = [...pins].filter((t) => t.length === 64);
  const notifier = createChangeNotifier();
  let closed = false;

  // Compares against every pin without stopping at the first match, so the
  // time taken does not tell which pin (or how many) matched.
  function match(pinned: readonly string[], thumbprint: string): string | undefined {
    let found: string | undefined;
    for (const pin of pinned) {
      if (thumbprintsEqual(pin, thumbprint) && found === undefined) {
        found = pin;
      }
    }
    return found;
  }

  function lookupSync(certificate: Certificate): StoreVerdict {
    if (closed) {
      return { kind: "error", error: new Error("store is closed") };
    }
    // A SHA-1 thumbprint is hashed only when one is pinned.
    const id = (sha1.length > 0 ? match(sha1, certificate.sha1) : undefined) ?? match(sha256, certificate.sha256);
    return id === undefined
      ? { kind: "refused", reason: "not_allowed" }
      : { kind: "admitted", entry: { id, thumbprint: id } };
  }

  return {
    get revision() {
      return notifier.revision;
    },
    lookup: lookupFromMemory(lookupSync),
    onChange: notifier.onChange,
    close() {
      closed = true;
      notifier.changed();
      notifier.clear();
      return Promise.resolve();
    },
  };
}
