import type { Certificate } from "../core/certificate.js";
import type { MetricsMeter } from "../core/metrics.js";
import type { PeerCertificate } from "../core/peer-certificate.js";
import type { RefusalStatus } from "../core/refusal-reasons.js";
import type { RefusalReason, StoreEntry, StoreVerdict } from "../core/store.js";
import type { ChainBuilder } from "./chain.js";
import { evaluatePolicy } from "./evaluate-policy.js";
import type { IdentityMatcher, IssuerCertificateSource } from "./identity-match.js";
import type { PolicyOptions, RuleOptions } from "./policy-options.js";
import { compileRules } from "./procedure-rules.js";
import type { RevocationChecker } from "./revocation.js";
import { createRuleCompiler } from "./rule-compiler.js";

/**
 * CompiledPolicy is the checks that apply to one group of procedures.
 */
export interface CompiledPolicy {
  /** Its position; per-connection results are kept by it. */
  readonly index: number;
  /** The rule's procedure pattern(s), or `default`. */
  readonly rule: string;
  /** `allow: "any"`: no certificate needed. */
  readonly open: boolean;
  readonly validateNotBefore: boolean;
  readonly validateNotAfter: boolean;
  readonly reportOnly: boolean;
  readonly trust: "tls" | ChainBuilder | undefined;
  readonly revocation: { readonly checker: RevocationChecker; readonly chain: ChainBuilder } | undefined;
  readonly requireClientAuthUsage: boolean;
  readonly identities: IdentityMatcher | undefined;
  /** Where `issuerThumbprint` finds the chain. */
  readonly identityChain: ChainBuilder | undefined;
}

/**
 * Outcome is what a policy says of a certificate on one connection.
 */
export type Outcome =
  | { readonly kind: "admitted"; readonly entry: StoreEntry; readonly expiresAt: number }
  | {
      readonly kind: "refused";
      readonly reason: RefusalReason;
      readonly status: RefusalStatus;
      readonly expiresAt: number;
    }
  | { readonly kind: "error"; readonly error: unknown };

/**
 * EvaluationContext is what `evaluate` needs from the decision core: the
 * time, the connection's memo of shared work, and the store look-up.
 */
export interface EvaluationContext {
  readonly t: number;
  /** Per-connection memo: the store verdict, chains, CRL checks, identity matches. */
  readonly facts: Map<object, unknown>;
  /** The memoized store look-up, or undefined when there is no store. */
  readonly lookupStore: (() => StoreVerdict | Promise<StoreVerdict>) | undefined;
}

/**
 * PolicyEngine is the compiled policy of one interceptor or gate.
 */
export interface PolicyEngine {
  /** Changes when a CA set, a CRL set or the issuer source changes. */
  readonly revision: number;
  readonly policies: readonly CompiledPolicy[];
  /** The policy of a procedure (first matching rule, else the default); cached per procedure. */
  policyFor(procedure: string | undefined): CompiledPolicy;
  /** Runs the per-connection checks of a policy; without a promise when nothing waits. */
  evaluate(
    policy: CompiledPolicy,
    peer: PeerCertificate,
    certificate: Certificate,
    context: EvaluationContext,
  ): Outcome | Promise<Outcome>;
}

/**
 * compilePolicy checks the policy options and prepares them, at start-up:
 * the top level is the default rule, `rules` add one compiled policy each
 * (see `createRuleCompiler`). It throws a `TypeError` naming the option for
 * every configuration mistake. `storeGet` is the store's `get`, the default
 * issuer source; `meter`, if any, records online revocation's fetches.
 */
export function compilePolicy(
  options: PolicyOptions,
  hasStore: boolean,
  storeGet?: IssuerCertificateSource,
  meter?: MetricsMeter,
): PolicyEngine {
  const skew = options.clockSkewMs ?? 0;
  if (!(skew >= 0) || !Number.isFinite(skew))
    throw new TypeError("certgate: clockSkewMs must be a non-negative number");
  if (options.expiryWarningDays !== undefined && !(options.expiryWarningDays >= 0)) {
    throw new TypeError("certgate: expiryWarningDays must be a non-negative number of days");
  }
  const compiler = createRuleCompiler(skew, options.issuerCertificates ?? storeGet, meter);
  const base: RuleOptions = {
    validateNotBefore: options.validateNotBefore,
    validateNotAfter: options.validateNotAfter,
    validateTrust: options.validateTrust,
    validateRevocation: options.validateRevocation,
    requireClientAuthUsage: options.requireClientAuthUsage,
    identities: options.identities,
    reportOnly: options.reportOnly,
  };
  const fallback = compiler.compile(base, "default", "", undefined);
  if (
    !hasStore &&
    typeof fallback.trust !== "object" &&
    !(fallback.trust === "tls" && fallback.identities !== undefined)
  ) {
    throw new TypeError(
      'certgate: options.store is required (a CertificateStore), unless validateTrust is given CA certificates ({ ca }) or is "tls" with identities',
    );
  }
  const policyFor = compileRules(options.rules, base, compiler.compile, fallback);
  const sourceList = [...compiler.sources];
  const issuers = compiler.issuers;
  return {
    get revision() {
      let sum = 0;
      for (const s of sourceList) sum += s.revision;
      return sum;
    },
    policies: compiler.policies,
    policyFor,
    evaluate: (policy, peer, certificate, context) => evaluatePolicy(policy, peer, certificate, context, issuers),
  };
}
