import type { Certificate } from "../core/certificate.js";
import { readCaConstraints, type CaConstraints } from "./certificate-extensions.js";
import type { CertificateSet } from "./certificate-set.js";
import { createLruCache } from "../core/lru-cache.js";

/**
 * ChainResult is the outcome of building a certificate's chain to a trusted
 * CA certificate.
 */
export type ChainResult =
  | {
      readonly kind: "built";
      /** Leaf first, the trust anchor last. */
      readonly chain: readonly Certificate[];
      /** When a CA of the chain expires (epoch ms): the chain must be built again then. */
      readonly expiresAt: number;
    }
  | {
      readonly kind: "failed";
      /** Why, for logs. */
      readonly why: string;
    };

/**
 * ChainBuilder builds chains against one `CertificateSet`.
 */
export interface ChainBuilder {
  /** The set's revision: a built chain is good until it changes. */
  readonly revision: number;
  /** Builds the chain of `leaf` at time `t` (epoch ms). */
  build(leaf: Certificate, t: number): ChainResult;
}

/**
 * ChainBuilderOptions configures `createChainBuilder`.
 */
export interface ChainBuilderOptions {
  /**
   * Let a chain end at any certificate of the set, not only at a self-signed
   * root (OpenSSL's partial chains). By default, false.
   */
  allowPartialChain?: boolean;
  /** Clock skew allowed on the CA validity windows, ms. By default, 0. */
  clockSkewMs?: number;
  /** The longest chain, leaf and anchor included. By default, 8. */
  maxLength?: number;
}

interface CaEntry {
  readonly certificate: Certificate;
  readonly constraints: CaConstraints;
  readonly anchor: boolean;
}

interface Index {
  readonly revision: number;
  readonly bySubject: Map<string, CaEntry[]>;
  readonly all: readonly CaEntry[];
  readonly bySha256: Map<string, CaEntry>;
}

/**
 * createChainBuilder returns a `ChainBuilder` over the CA certificates of
 * `set`. It uses Node's native X.509 code for issuer matching
 * (`checkIssued`) and signatures, and checks on every CA of the chain: the
 * basic constraints cA flag, key usage keyCertSign, the path length
 * constraint and the validity window. Certificates in the set that are not
 * self-signed serve as intermediates. The set is indexed again when its
 * revision changes.
 */
export function createChainBuilder(set: CertificateSet, options: ChainBuilderOptions = {}): ChainBuilder {
  const allowPartialChain = options.allowPartialChain ?? false;
  const skew = options.clockSkewMs ?? 0;
  const maxLength = options.maxLength ?? 8;
  let index: Index | undefined;
  // Chains built, by the leaf's SHA-256: a client opening many connections
  // pays for the signature checks once. Emptied when the set changes.
  const built = createLruCache<string, ChainResult & { kind: "built" }>(10_000);

  function currentIndex(): Index {
    const revision = set.revision;
    if (index !== undefined && index.revision === revision) return index;
    built.clear();
    const bySubject = new Map<string, CaEntry[]>();
    const bySha256 = new Map<string, CaEntry>();
    const all: CaEntry[] = [];
    for (const certificate of set.certificates) {
      let constraints: CaConstraints;
      try {
        constraints = readCaConstraints(certificate.der);
      } catch {
        continue; // unreadable extensions: never a CA
      }
      const x = certificate.x509;
      const selfSigned = x.subject === x.issuer && x.checkIssued(x) && x.verify(x.publicKey);
      const entry: CaEntry = { certificate, constraints, anchor: selfSigned || allowPartialChain };
      all.push(entry);
      bySha256.set(certificate.sha256, entry);
      const list = bySubject.get(x.subject) ?? [];
      list.push(entry);
      bySubject.set(x.subject, list);
    }
    index = { revision, bySubject, all, bySha256 };
    return index;
  }

  return {
    get revision() {
      return set.revision;
    },
    build(leaf, t) {
      const idx = currentIndex();
      const hit = built.get(leaf.sha256);
      if (hit !== undefined && t < hit.expiresAt) return hit;
      // A certificate that is itself a trust anchor needs no chain.
      const self = idx.bySha256.get(leaf.sha256);
      if (self?.anchor) {
        return { kind: "built", chain: [leaf], expiresAt: Infinity };
      }
      let why = "no issuer among the CA certificates";
      const extend = (path: Certificate[]): Certificate[] | undefined => {
        const current = path[path.length - 1] as Certificate;
        if (path.length >= maxLength) {
          why = "chain too long";
          return undefined;
        }
        const named = idx.bySubject.get(current.x509.issuer);
        const candidates = named ?? idx.all;
        for (const ca of candidates) {
          const c = ca.certificate;
          if (path.some((p) => p.sha256 === c.sha256) || !current.x509.checkIssued(c.x509)) continue;
          if (!ca.constraints.isCA || !ca.constraints.keyCertSign) {
            why = "issuer is not a CA";
            continue;
          }
          if (t < c.notBefore.getTime() - skew || t > c.notAfter.getTime() + skew) {
            why = "a CA certificate of the chain is outside its validity window";
            continue;
          }
          // CAs between this one and the leaf, which its path length limits.
          if (ca.constraints.pathLength !== undefined && path.length - 1 > ca.constraints.pathLength) {
            why = "path length constraint exceeded";
            continue;
          }
          if (!current.x509.verify(c.x509.publicKey)) {
            why = "bad signature";
            continue;
          }
          const next = [...path, c];
          if (ca.anchor) return next;
          const found = extend(next);
          if (found !== undefined) return found;
        }
        if (named === undefined && why === "no issuer among the CA certificates" && path.length > 1) {
          why = "chain does not reach a trusted root";
        }
        return undefined;
      };
      const chain = extend([leaf]);
      if (chain === undefined) return { kind: "failed", why };
      let expiresAt = Infinity;
      for (const c of chain.slice(1)) expiresAt = Math.min(expiresAt, c.notAfter.getTime() + skew);
      const result = { kind: "built" as const, chain, expiresAt };
      built.set(leaf.sha256, result);
      return result;
    },
  };
}
