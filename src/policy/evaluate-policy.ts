import type { Certificate } from "../core/certificate.js";
import type { PeerCertificate } from "../core/peer-certificate.js";
import type { RefusalStatus } from "../core/refusal-reasons.js";
import type { RefusalReason, StoreEntry } from "../core/store.js";
import { allowsClientAuth, extendedKeyUsageOf } from "./certificate-extensions.js";
import type { ChainBuilder, ChainResult } from "./chain.js";
import type { IssuerResolver } from "./identity-match.js";
import type { CompiledPolicy, EvaluationContext, Outcome } from "./policy.js";

function memo<T>(facts: Map<object, unknown>, key: object, compute: () => T): T {
  if (facts.has(key)) return facts.get(key) as T;
  const value = compute();
  facts.set(key, value);
  return value;
}

/**
 * evaluatePolicy runs the per-connection checks of one compiled policy, in
 * order: key usage, trust (Node's verification or certgate's chain),
 * revocation, the store's verdict, identities. Shared work (chains, CRL
 * checks, identity matches) is kept in `context.facts` for the connection.
 * `issuers` resolves `issuerCertificateId` identities.
 */
export async function evaluatePolicy(
  policy: CompiledPolicy,
  peer: PeerCertificate,
  certificate: Certificate,
  context: EvaluationContext,
  issuers: IssuerResolver | undefined,
): Promise<Outcome> {
  const { t, facts } = context;
  let expiresAt = Infinity;
  const refuse = (reason: RefusalReason, status: RefusalStatus = "unauthenticated"): Outcome => ({
    kind: "refused",
    reason,
    status,
    expiresAt,
  });
  try {
    if (policy.requireClientAuthUsage && !allowsClientAuth(extendedKeyUsageOf(certificate)))
      return refuse("wrong_usage");
    let chain: readonly Certificate[] | undefined;
    const chainOf = (b: ChainBuilder): ChainResult => memo(facts, b, () => b.build(certificate, t));
    if (policy.trust === "tls") {
      if (!peer.authorized) return refuse("untrusted");
    } else if (policy.trust !== undefined) {
      const built = chainOf(policy.trust);
      if (built.kind === "failed") return refuse("untrusted");
      chain = built.chain;
      expiresAt = Math.min(expiresAt, built.expiresAt);
    }
    if (policy.revocation !== undefined) {
      const { checker } = policy.revocation;
      const built = chainOf(policy.revocation.chain);
      if (built.kind === "failed") return refuse("crl_unavailable");
      const status = memo(facts, checker, () => checker.check(built.chain, t));
      if (status.kind !== "good") return refuse(status.reason);
      expiresAt = Math.min(expiresAt, status.expiresAt, built.expiresAt);
    }
    let entry: StoreEntry;
    if (context.lookupStore !== undefined) {
      const verdict = await context.lookupStore();
      if (verdict.kind === "error") return { kind: "error", error: verdict.error };
      expiresAt = Math.min(expiresAt, verdict.expiresAt ?? Infinity);
      if (verdict.kind === "refused") return refuse(verdict.reason);
      entry = verdict.entry;
    } else {
      // No store: the chain (or Node's TLS verification) admitted it.
      entry = { id: chain?.[chain.length - 1]?.sha256 ?? certificate.sha256, labels: { admittedBy: "trust" } };
    }
    if (policy.identities !== undefined) {
      const matcher = policy.identities;
      if (matcher.needsChain && chain === undefined && policy.identityChain !== undefined) {
        const built = chainOf(policy.identityChain);
        chain = built.kind === "built" ? built.chain : undefined;
      }
      const facts2 = { certificate, chain, issuerById: (id: string) => (issuers as IssuerResolver).get(id) };
      let matched: boolean;
      try {
        matched = await memo(facts, matcher, () => matcher.match(facts2));
      } catch (error) {
        facts.delete(matcher);
        return { kind: "error", error };
      }
      if (!matched) return refuse("not_allowed", "permission_denied");
    }
    return { kind: "admitted", entry, expiresAt };
  } catch (error) {
    // The certificate parsed in Node but not in certgate's DER reader.
    return error instanceof RangeError ? refuse("invalid_certificate") : { kind: "error", error };
  }
}
