import "reflect-metadata";
import { webcrypto } from "node:crypto";
import * as x509 from "@peculiar/x509";
import type { StoreVerdict } from "../../core/store.js";
import type { CaCertificate } from "./ca-folder.js";

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const clientAuth = "1.3.6.1.5.5.7.3.2";
const anyExtendedKeyUsage = "2.5.29.37.0";
// Distinct clients seen within one set of issuers; past this the cache starts over.
const maxCached = 10_000;

/**
 * CaVerifier decides whether a leaf certificate was issued by one of the
 * CA folder's certificates.
 */
export interface CaVerifier {
  /** Whether there is any issuer at all. */
  readonly empty: boolean;
  /**
   * Verifies the leaf (DER) at time `now` (epoch ms); `sha256` keys the
   * verdict cache. Never throws.
   */
  verify(der: Uint8Array, sha256: string, now: number): Promise<StoreVerdict>;
}

interface Cached {
  readonly verdict: Promise<StoreVerdict>;
  /** Until when (epoch ms) the verdict holds. */
  readonly until: number;
}

function refused(reason: string, until = Infinity): { verdict: StoreVerdict; until: number } {
  return { verdict: { kind: "refused", reason, ...(until === Infinity ? {} : { expiresAt: until }) }, until };
}

/**
 * createCaVerifier returns a `CaVerifier` over `cas`. A new one is made
 * whenever the CA folder changes, which also drops its cache.
 *
 * A leaf is admitted when `X509ChainBuilder` finds its issuer among `cas`
 * (matched by name and key identifier, and by a verified signature), every
 * certificate of the chain it builds is within its validity window at `now`,
 * the issuers' pathLenConstraints hold, and the leaf's extendedKeyUsage,
 * when present, allows clientAuth. Every issuer in `cas` already passed
 * `caProblem` (cA and keyCertSign) when it was loaded.
 */
export function createCaVerifier(cas: readonly CaCertificate[]): CaVerifier {
  const builder = new x509.X509ChainBuilder({ certificates: cas.map((c) => c.certificate) });
  const byCertificate = new Map(cas.map((c) => [c.certificate, c]));
  const cache = new Map<string, Cached>();

  async function check(der: Uint8Array, now: number): Promise<{ verdict: StoreVerdict; until: number }> {
    let leaf: x509.X509Certificate;
    try {
      leaf = new x509.X509Certificate(der);
    } catch {
      return refused("not_allowed");
    }
    if (now < leaf.notBefore.getTime()) return refused("not_yet_valid", leaf.notBefore.getTime());
    if (now > leaf.notAfter.getTime()) return refused("expired");
    const usage = leaf.getExtension(x509.ExtendedKeyUsageExtension);
    if (usage !== null && !usage.usages.some((u) => u === clientAuth || u === anyExtendedKeyUsage)) {
      return refused("not_allowed");
    }
    let chain: x509.X509Certificates;
    try {
      chain = await builder.build(leaf, webcrypto as unknown as Parameters<typeof builder.build>[1]);
    } catch {
      return refused("not_allowed");
    }
    const issuer = chain[1] === undefined ? undefined : byCertificate.get(chain[1]);
    if (issuer === undefined) return refused("not_allowed");
    let until = leaf.notAfter.getTime();
    for (let i = 1; i < chain.length; i++) {
      const ca = chain[i]!;
      if (now < ca.notBefore.getTime()) return refused("not_allowed", ca.notBefore.getTime());
      if (now > ca.notAfter.getTime()) return refused("not_allowed");
      const pathLength = ca.getExtension(x509.BasicConstraintsExtension)?.pathLength;
      if (pathLength !== undefined && i - 1 > pathLength) return refused("not_allowed");
      until = Math.min(until, ca.notAfter.getTime());
    }
    return { verdict: { kind: "admitted", entry: { id: issuer.id }, expiresAt: until }, until };
  }

  return {
    empty: cas.length === 0,
    verify(der, sha256, now) {
      const cached = cache.get(sha256);
      if (cached !== undefined && now <= cached.until) return cached.verdict;
      if (cache.size >= maxCached) cache.clear();
      const entry: { verdict: Promise<StoreVerdict>; until: number } = { verdict: undefined as never, until: Infinity };
      entry.verdict = check(der, now).then(
        (result) => {
          entry.until = result.until;
          return result.verdict;
        },
        (error: unknown): StoreVerdict => {
          cache.delete(sha256);
          return { kind: "error", error };
        },
      );
      cache.set(sha256, entry);
      return entry.verdict;
    },
  };
}
