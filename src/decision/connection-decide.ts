// The per-call decision: validity window on every call, then the compiled
// policy, whose result is cached per certificate (and Node's verdict on its
// chain) until the store's or the policy's revision changes. A returning
// client's new connection reads the same Certificate (see peer-certificate.ts)
// and so finds its decision made.
import type { Certificate } from "../core/certificate.js";
import { failure, refused, deniedProcedure, type Decision } from "../core/decision-report.js";
import { warnOnce } from "../core/warn-once.js";
import type { PeerCertificate } from "../core/peer-certificate.js";
import type { CertificateStore, StoreVerdict } from "../core/store.js";
import { lookupStore } from "./store-lookup.js";
import type { CompiledPolicy, Outcome, PolicyEngine } from "../policy/policy.js";

/**
 * Decide checks the certificate of one call. It answers synchronously when
 * the certificate's cached verdict is still good, so a warm call costs no
 * allocation and no promise.
 */
export type Decide = (peer: PeerCertificate | undefined, procedure?: string) => Decision | Promise<Decision>;

// What has been decided of one certificate: results per compiled policy, and
// the shared work (store verdict, chain, CRL check, identity match), all good
// until a revision changes or `expiresAt` passes. `authorized` is Node's
// verdict on the chain, which `validateTrust: "tls"` reads.
interface CertificateState {
  readonly authorized: boolean;
  readonly storeRevision: number;
  readonly policyRevision: number;
  expiresAt: number;
  readonly facts: Map<object, unknown>;
  readonly results: (Decision | Promise<Decision> | undefined)[];
}

/**
 * ConnectionDecideOptions is what `createConnectionDecide` needs, already
 * checked by `createDecisionCore`.
 */
export interface ConnectionDecideOptions {
  readonly engine: PolicyEngine;
  readonly store: CertificateStore | undefined;
  readonly now: () => number;
  readonly clockSkewMs: number;
  readonly lookupTimeoutMs: number;
  /** Called with the duration (ms) and verdict of every look-up that left the decision's cache. */
  readonly onLookup?: (ms: number, verdict: StoreVerdict) => void;
}

/**
 * createConnectionDecide returns the `Decide` of a compiled policy. A
 * procedure left open by `allow: "any"` gets the default rule here: the
 * callers let open procedures through before deciding.
 */
export function createConnectionDecide(options: ConnectionDecideOptions): Decide {
  const { engine, store, now, clockSkewMs: skew, lookupTimeoutMs, onLookup } = options;
  const fallback = engine.policyFor(undefined);
  const cache = new WeakMap<Certificate, CertificateState>();
  const noCertificate = refused("no_certificate", undefined);
  const unreadable = refused("invalid_certificate", undefined);

  function evaluate(
    peer: PeerCertificate,
    certificate: Certificate,
    policy: CompiledPolicy,
    state: CertificateState,
    t: number,
  ): Decision | Promise<Decision> {
    const facts = state.facts;
    const lookup =
      store === undefined
        ? undefined
        : () => {
            let verdict = facts.get(store) as StoreVerdict | Promise<StoreVerdict> | undefined;
            if (verdict === undefined) {
              const start = onLookup === undefined ? 0 : performance.now();
              verdict = lookupStore(store, certificate, lookupTimeoutMs);
              if (onLookup !== undefined) verdict = timed(verdict, start, onLookup);
              facts.set(store, verdict);
            }
            return verdict;
          };
    const settle = (outcome: Outcome): Decision => {
      const decision = outcomeDecision(outcome, certificate, policy);
      if (cache.get(certificate) === state) {
        if (outcome.kind === "error") {
          // Never cache a failure: the next call asks again (and is refused
          // meanwhile, since a failure is a refusal).
          state.results[policy.index] = undefined;
          if (store !== undefined) facts.delete(store);
        } else {
          state.results[policy.index] = decision;
          if (outcome.expiresAt < state.expiresAt) state.expiresAt = outcome.expiresAt;
        }
      }
      return decision;
    };
    let outcome: Outcome | Promise<Outcome>;
    try {
      outcome = engine.evaluate(policy, peer, certificate, { t, facts, lookupStore: lookup });
    } catch (error) {
      outcome = { kind: "error", error };
    }
    // A store that answers from memory decides a new connection at once:
    // no promise, no microtask before the call goes on.
    if (!(outcome instanceof Promise)) return settle(outcome);
    const result = outcome.then(settle, (error: unknown) => settle({ kind: "error", error }));
    state.results[policy.index] = result;
    return result;
  }

  const decide: Decide = function decide(peer, procedure) {
    const found = procedure === undefined ? fallback : engine.policyFor(procedure);
    const policy = found.open ? fallback : found;
    if (peer === undefined) {
      warnOnce(
        "context",
        "certgate: no peer certificate in the call's context; pass peerCertificateContextValues as the adapter's contextValues, or every call is refused",
      );
      return mark(noCertificate, policy);
    }
    const certificate = peer.certificate;
    if (certificate === undefined) {
      return mark(peer.error === undefined ? noCertificate : unreadable, policy);
    }
    let t: number;
    let storeRevision: number;
    let policyRevision: number;
    try {
      t = now();
      storeRevision = store === undefined ? 0 : store.revision;
      policyRevision = engine.revision;
    } catch (error) {
      // A broken clock or store fails closed, like a failed look-up.
      return mark(failure(certificate, error), policy);
    }
    // Negated comparisons, so that an unreadable date (NaN) refuses.
    if (policy.validateNotAfter && !(t <= certificate.notAfter.getTime() + skew)) {
      return mark(refused("expired", certificate), policy);
    }
    if (policy.validateNotBefore && !(t >= certificate.notBefore.getTime() - skew)) {
      return mark(refused("not_yet_valid", certificate), policy);
    }
    let state = cache.get(certificate);
    if (
      state === undefined ||
      state.authorized !== peer.authorized ||
      state.storeRevision !== storeRevision ||
      state.policyRevision !== policyRevision ||
      !(t < state.expiresAt)
    ) {
      state = {
        authorized: peer.authorized,
        storeRevision,
        policyRevision,
        expiresAt: Infinity,
        facts: new Map(),
        results: [],
      };
      cache.set(certificate, state);
    }
    return state.results[policy.index] ?? evaluate(peer, certificate, policy, state, t);
  };
  return withForwarding(decide);
}

function timed(
  verdict: StoreVerdict | Promise<StoreVerdict>,
  start: number,
  onLookup: (ms: number, verdict: StoreVerdict) => void,
): StoreVerdict | Promise<StoreVerdict> {
  const report = (v: StoreVerdict) => {
    try {
      onLookup(performance.now() - start, v);
    } catch {
      // Metrics must not change the decision.
    }
    return v;
  };
  return verdict instanceof Promise ? verdict.then(report) : report(verdict);
}

// Report-only policies mark their refusals, which the adapters let through.
function mark(decision: Decision, policy: CompiledPolicy): Decision {
  return policy.reportOnly && decision.kind !== "admitted" ? { ...decision, reportOnly: true } : decision;
}

function outcomeDecision(outcome: Outcome, certificate: Certificate, policy: CompiledPolicy): Decision {
  switch (outcome.kind) {
    case "admitted":
      return { kind: "admitted", certificate, entry: outcome.entry };
    case "refused":
      return mark(
        outcome.status === "permission_denied" ? deniedProcedure(certificate) : refused(outcome.reason, certificate),
        policy,
      );
    default:
      return mark(failure(certificate, outcome.error), policy);
  }
}

// Decisions about proxied peers (and peers whose forwarding headers were
// ignored) carry the peer, so that onDecision can say how the certificate
// arrived. Direct peers keep the shared, allocation-free decisions.
function withForwarding(decide: Decide): Decide {
  return (peer, procedure) => {
    const result = decide(peer, procedure);
    if (peer === undefined || (peer.source !== "proxy" && peer.ignoredForwardingHeaders === undefined)) {
      return result;
    }
    return result instanceof Promise ? result.then((d) => ({ ...d, peer })) : { ...result, peer };
  };
}
