import type { Certificate } from "../core/certificate.js";
import type { PeerCertificate } from "../core/peer-certificate.js";
import type { RefusalStatus } from "../core/refusal-reasons.js";
import type { RefusalReason, StoreEntry, StoreVerdict } from "../core/store.js";
import { allowsClientAuth, extendedKeyUsageOf } from "./certificate-extensions.js";
import type { ChainBuilder, ChainResult } from "./chain.js";
import type { IssuerResolver } from "./identity-match.js";
import type { CompiledPolicy, EvaluationContext, Outcome } from "./policy.js";
import type { RevocationResult } from "./revocation.js";

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
 * `issuers` resolves `issuerCertificateId` identities. It answers without a
 * promise when the store did (`lookupSync`) and no identity is to be matched.
 */
export function evaluatePolicy(
  policy: CompiledPolicy,
  peer: PeerCertificate,
  certificate: Certificate,
  context: EvaluationContext,
  issuers: IssuerResolver | undefined,
): Outcome | Promise<Outcome> {
  const { t, facts } = context;
  // Top-level helpers rather than closures: this runs on every new
  // connection, where each allocation counts against the handshake.
  const state: Evaluation = { policy, certificate, facts, t, issuers, chain: undefined, expiresAt: Infinity };
  try {
    if (policy.requireClientAuthUsage && !allowsClientAuth(extendedKeyUsageOf(certificate)))
      return refuse(state, "wrong_usage");
    if (policy.trust === "tls") {
      if (!peer.authorized) return refuse(state, "untrusted");
    } else if (policy.trust !== undefined) {
      const built = chainOf(state, policy.trust);
      if (built.kind === "failed") return refuse(state, "untrusted");
      state.chain = built.chain;
      state.expiresAt = Math.min(state.expiresAt, built.expiresAt);
    }
    if (policy.revocation !== undefined) {
      const { checker } = policy.revocation;
      const built = chainOf(state, policy.revocation.chain);
      if (built.kind === "failed") return refuse(state, "crl_unavailable");
      state.expiresAt = Math.min(state.expiresAt, built.expiresAt);
      const status = memo(facts, checker, () => checker.check(built.chain, t));
      // Only online revocation waits: for a status not known yet, bounded by its fetch timeout.
      if (status instanceof Promise) {
        return status.then((s) => afterRevocation(state, s, context)).catch((error: unknown) => caught(state, error));
      }
      return afterRevocation(state, status, context);
    }
    return lookup(state, context);
  } catch (error) {
    return caught(state, error);
  }
}

function afterRevocation(
  state: Evaluation,
  status: RevocationResult,
  context: EvaluationContext,
): Outcome | Promise<Outcome> {
  state.expiresAt = Math.min(state.expiresAt, status.expiresAt ?? Infinity);
  if (status.kind !== "good") return refuse(state, status.reason);
  return lookup(state, context);
}

function lookup(state: Evaluation, context: EvaluationContext): Outcome | Promise<Outcome> {
  const verdict = context.lookupStore?.();
  if (verdict instanceof Promise)
    return verdict.then((v) => afterStore(state, v)).catch((error: unknown) => caught(state, error));
  return afterStore(state, verdict);
}

// One evaluation in progress: what the checks so far have found.
interface Evaluation {
  readonly policy: CompiledPolicy;
  readonly certificate: Certificate;
  readonly facts: Map<object, unknown>;
  readonly t: number;
  readonly issuers: IssuerResolver | undefined;
  chain: readonly Certificate[] | undefined;
  expiresAt: number;
}

function refuse(state: Evaluation, reason: RefusalReason, status: RefusalStatus = "unauthenticated"): Outcome {
  return { kind: "refused", reason, status, expiresAt: state.expiresAt };
}

function chainOf(state: Evaluation, builder: ChainBuilder): ChainResult {
  return memo(state.facts, builder, () => builder.build(state.certificate, state.t));
}

// The store's verdict (undefined without a store), then the identities.
function afterStore(state: Evaluation, verdict: StoreVerdict | undefined): Outcome | Promise<Outcome> {
  const { policy, certificate, facts } = state;
  let entry: StoreEntry;
  if (verdict !== undefined) {
    if (verdict.kind === "error") return { kind: "error", error: verdict.error };
    state.expiresAt = Math.min(state.expiresAt, verdict.expiresAt ?? Infinity);
    if (verdict.kind === "refused") return refuse(state, verdict.reason);
    entry = verdict.entry;
  } else {
    // No store: the chain (or Node's TLS verification) admitted it.
    const chain = state.chain;
    entry = { id: chain?.[chain.length - 1]?.sha256 ?? certificate.sha256, labels: { admittedBy: "trust" } };
  }
  if (policy.identities === undefined) return { kind: "admitted", entry, expiresAt: state.expiresAt };
  const matcher = policy.identities;
  if (matcher.needsChain && state.chain === undefined && policy.identityChain !== undefined) {
    const built = chainOf(state, policy.identityChain);
    state.chain = built.kind === "built" ? built.chain : undefined;
  }
  const issuers = state.issuers;
  const identityFacts = {
    certificate,
    chain: state.chain,
    issuerById: (id: string) => (issuers as IssuerResolver).get(id),
  };
  return Promise.resolve()
    .then(() => memo(facts, matcher, () => matcher.match(identityFacts)))
    .then(
      (matched): Outcome =>
        matched
          ? { kind: "admitted", entry, expiresAt: state.expiresAt }
          : refuse(state, "not_allowed", "permission_denied"),
      (error: unknown): Outcome => {
        facts.delete(matcher);
        return { kind: "error", error };
      },
    );
}

// The certificate parsed in Node but not in certgate's DER reader.
function caught(state: Evaluation, error: unknown): Outcome {
  return error instanceof RangeError ? refuse(state, "invalid_certificate") : { kind: "error", error };
}
