import { timingSafeEqual } from "node:crypto";
import { normalizeThumbprint, type Certificate } from "../core/certificate.js";
import { createChangeNotifier, type CertificateStore, type StoreVerdict } from "../core/store.js";

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
  const pins = new Map<string, Buffer>();
  for (const text of list) {
    const normalized = normalizeThumbprint(text);
    pins.set(normalized, Buffer.from(normalized, "hex"));
  }
  const sha1 = [...pins].filter(([t]) => t.length === 40);
  const sha256 = [...pins].filter(([t]) => t.length === 64);
  const notifier = createChangeNotifier();
  let closed = false;

  // Compares against every pin without stopping at the first match, so the
  // time taken does not tell which pin (or how many) matched.
  function match(pinned: [string, Buffer][], thumbprint: string): string | undefined {
    const presented = Buffer.from(thumbprint, "hex");
    let found: string | undefined;
    for (const [id, bytes] of pinned) {
      if (timingSafeEqual(bytes, presented) && found === undefined) {
        found = id;
      }
    }
    return found;
  }

  return {
    get revision() {
      return notifier.revision;
    },
    lookup(certificate: Certificate): Promise<StoreVerdict> {
      if (closed) {
        return Promise.resolve({ kind: "error", error: new Error("store is closed") });
      }
      const id = match(sha1, certificate.sha1) ?? match(sha256, certificate.sha256);
      return Promise.resolve(
        id === undefined
          ? { kind: "refused", reason: "not_allowed" }
          : { kind: "admitted", entry: { id, thumbprint: id } },
      );
    },
    onChange: notifier.onChange,
    close() {
      closed = true;
      notifier.changed();
      notifier.clear();
      return Promise.resolve();
    },
  };
}
