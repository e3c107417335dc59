import type { Certificate } from "../../core/certificate.js";
import type { StoreVerdict } from "../../core/store.js";
import { allowsClientAuth, extendedKeyUsageOf } from "../../policy/certificate-extensions.js";
import { createChainBuilder, type ChainBuilder } from "../../policy/chain.js";
import type { CaCertificate } from "./ca-folder.js";

/**
 * CaVerifier decides whether a leaf certificate was issued by one of the
 * CA folder's certificates.
 */
export interface CaVerifier {
  /** Whether there is any issuer at all. */
  readonly empty: boolean;
  /** Verifies the leaf at time `now` (epoch ms). Never throws. */
  verify(leaf: Certificate, now: number): StoreVerdict;
}

function refused(reason: string, expiresAt?: number): StoreVerdict {
  return { kind: "refused", reason, ...(expiresAt === undefined ? {} : { expiresAt }) };
}

/**
 * createCaVerifier returns a `CaVerifier` over `cas`, on certgate's one chain
 * builder (the one of `validateTrust: { ca }`). A new one is made whenever
 * the CA folder changes, which also drops the chains it built.
 *
 * A leaf is admitted when its issuer is one of `cas` (matched by name and key
 * identifier, and by a verified signature): each certificate of the folder
 * is a trust anchor of its own, as with `allowPartialChain`, so a folder may
 * hold an intermediate CA without its root. The leaf and its issuer must be
 * within their validity windows at `now`, and the leaf's extendedKeyUsage,
 * when present, must allow clientAuth. Every issuer in `cas` already passed
 * `caProblem` (cA and keyCertSign) when it was loaded.
 */
export function createCaVerifier(cas: readonly CaCertificate[]): CaVerifier {
  const byThumbprint = new Map(cas.map((c) => [c.certificate.sha256, c]));
  const builder: ChainBuilder | undefined =
    cas.length === 0
      ? undefined
      : createChainBuilder(
          {
            revision: 1,
            certificates: cas.map((c) => c.certificate),
            onChange: () => () => undefined,
            close: () => Promise.resolve(),
          },
          { allowPartialChain: true },
        );

  return {
    empty: builder === undefined,
    verify(leaf, now) {
      try {
        if (!(now >= leaf.notBefore.getTime())) return refused("not_yet_valid", leaf.notBefore.getTime());
        if (!(now <= leaf.notAfter.getTime())) return refused("expired");
        if (!allowsClientAuth(extendedKeyUsageOf(leaf))) return refused("not_allowed");
        const built = builder?.build(leaf, now);
        if (built === undefined || built.kind === "failed") return refused("not_allowed");
        const issuer = built.chain[1] === undefined ? undefined : byThumbprint.get(built.chain[1].sha256);
        if (issuer === undefined) return refused("not_allowed");
        return {
          kind: "admitted",
          entry: { id: issuer.id },
          expiresAt: Math.min(leaf.notAfter.getTime(), built.expiresAt),
        };
      } catch (error) {
        return { kind: "error", error };
      }
    },
  };
}
