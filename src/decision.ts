import type { Certificate } from "./certificate.js";
import { clockOf, validateOptions, type ClientCertOptions } from "./decision-options.js";
import {
  deniedProcedure,
  failure,
  refused,
  reportDecision,
  reportOpen,
  type Decision,
  type DecisionVia,
} from "./decision-report.js";
import { issuerSourceOf, lookupStore } from "./decision-store.js";
import { warnOnce, type PeerCertificate } from "./peer-certificate.js";
import { compilePolicy, type CompiledPolicy, type Outcome } from "./policy/policy.js";
import { Code } from "./status-code.js";
import type { StoreVerdict } from "./store.js";

// The decision's options and its reporting live in files of their own; they
// are imported from here, as they always were. Nothing here loads a
// framework: Connect's adapters add `enforce` (interceptors/decision-core.ts),
// the grpc-js adapter maps decisions to gRPC statuses.
export type { ClientCertOptions } from "./decision-options.js";
export {
  refusalMessage,
  reportDecision,
  type Decision,
  type DecisionEvent,
  type DecisionVia,
} from "./decision-report.js";

/**
 * Decide checks the certificate of one call. It answers synchronously when
 * the connection's cached verdict is still good, so a warm call costs no
 * allocation and no promise.
 */
export type Decide = (peer: PeerCertificate | undefined, procedure?: string) => Decision | Promise<Decision>;

/**
 * DecisionEngine is the decision shared by every adapter, with what they
 * need around it; it loads no framework.
 */
export interface DecisionEngine {
  /** Decides one call; `procedure` selects the rule. */
  readonly decide: Decide;
  /** Whether there are rules, so that the decision depends on the procedure. */
  readonly needsProcedure: boolean;
  /** Whether reporting is on (`onDecision`), so that every call needs its procedure. */
  readonly reports: boolean;
  /** Whether a rule with `allow: "any"` leaves the procedure open. */
  isOpen(procedure: string): boolean;
  /** Calls `onDecision`, if set, with the event of one call; `decision` undefined for an open procedure. */
  report(decision: Decision | undefined, procedure: string, via: DecisionVia): void;
}

// What one connection has decided: results per compiled policy, and the
// shared per-certificate work (store verdict, chain, CRL check, identity
// match), all good until a revision changes or `expiresAt` passes.
interface ConnectionState {
  readonly storeRevision: number;
  readonly policyRevision: number;
  expiresAt: number;
  readonly facts: Map<object, unknown>;
  readonly results: (Decision | Promise<Decision> | undefined)[];
}

/**
 * createDecide builds the decision core shared by the interceptor and the
 * gate: validity window on every call, then the policy (trust, revocation,
 * key usage, the store's verdict, identities), cached per connection until
 * the store's or the policy's revision changes. Procedures left open by a
 * rule with `allow: "any"` are not decided here: the adapters let them
 * through first; `decide` applies the default rule to them.
 */
export function createDecide(options: ClientCertOptions): Decide {
  return createDecisionEngine(options).decide;
}

/**
 * createDecisionEngine is `createDecide` with the rule look-up and the
 * `onDecision` reporting the adapters use. It throws a `TypeError` naming
 * the option for malformed options.
 */
export function createDecisionEngine(options: ClientCertOptions): DecisionEngine {
  validateOptions(options);
  const { store, onDecision } = options;
  const engine = compilePolicy(options, store !== undefined, issuerSourceOf(store));
  const fallback = engine.policyFor(undefined);
  const needsProcedure = engine.policies.length > 1;
  const skew = options.clockSkewMs ?? 0;
  const now = clockOf(options);
  const lookupTimeoutMs = options.lookupTimeoutMs ?? 5000;
  const warnMs = options.expiryWarningDays === undefined ? undefined : options.expiryWarningDays * 86_400_000;
  const cache = new WeakMap<PeerCertificate, ConnectionState>();
  const noCertificate = refused("no_certificate", undefined);
  const unreadable = refused("invalid_certificate", undefined);

  function evaluate(peer: PeerCertificate, certificate: Certificate, policy: CompiledPolicy, state: ConnectionState, t: number): Promise<Decision> {
    const facts = state.facts;
    const lookup =
      store === undefined
        ? undefined
        : () => {
            let verdict = facts.get(store) as Promise<StoreVerdict> | undefined;
            if (verdict === undefined) {
              verdict = lookupStore(store, certificate, lookupTimeoutMs);
              facts.set(store, verdict);
            }
            return verdict;
          };
    const settle = (outcome: Outcome): Decision => {
      const decision = outcomeDecision(outcome, certificate, policy);
      if (cache.get(peer) === state) {
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
    const result = engine
      .evaluate(policy, peer, certificate, { t, facts, lookupStore: lookup })
      .then(settle, (error: unknown) => settle({ kind: "error", error }));
    state.results[policy.index] = result;
    return result;
  }

  const decideDirect: Decide = function decide(peer, procedure) {
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
    let state = cache.get(peer);
    if (
      state === undefined ||
      state.storeRevision !== storeRevision ||
      state.policyRevision !== policyRevision ||
      !(t < state.expiresAt)
    ) {
      state = { storeRevision, policyRevision, expiresAt: Infinity, facts: new Map(), results: [] };
      cache.set(peer, state);
    }
    return state.results[policy.index] ?? evaluate(peer, certificate, policy, state, t);
  };
  const decide = withForwarding(decideDirect);

  const isOpen = (procedure: string) => needsProcedure && engine.policyFor(procedure).open;

  function report(decision: Decision | undefined, procedure: string, via: DecisionVia): void {
    if (onDecision === undefined) {
      return;
    }
    let expiresSoon = false;
    const certificate = decision?.certificate;
    if (warnMs !== undefined && certificate !== undefined) {
      try {
        expiresSoon = certificate.notAfter.getTime() - now() < warnMs;
      } catch {
        // A broken clock already refused the call; no warning to add.
      }
    }
    const rule = needsProcedure ? engine.policyFor(procedure).rule : "default";
    if (decision === undefined) {
      reportOpen(onDecision, procedure, via, rule);
      return;
    }
    reportDecision(onDecision, decision, procedure, via, { rule, expiresSoon });
  }

  return { decide, needsProcedure, reports: onDecision !== undefined, isOpen, report };
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
        outcome.code === Code.PermissionDenied
          ? deniedProcedure(outcome.reason, certificate)
          : refused(outcome.reason, certificate),
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
