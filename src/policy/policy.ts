import { Code } from "../status-code.js";
import type { Certificate } from "../certificate.js";
import type { PeerCertificate } from "../peer.js";
import type { RefusalReason, StoreEntry, StoreVerdict } from "../store.js";
import { allowsClientAuth } from "./certificate-extensions.js";
import { toCertificateSet, type CertificateSet, type CertificateSetInput } from "./certificate-set.js";
import { createChainBuilder, type ChainBuilder, type ChainResult } from "./chain.js";
import { toCrlSet, type CrlSet } from "./crl-set.js";
import { compileIdentities, createIssuerResolver, type IdentityMatcher, type IssuerCertificateSource, type IssuerResolver } from "./identity-match.js";
import type { PolicyOptions, ProcedureRule, RevocationOptions, RuleOptions, TrustOptions } from "./policy-options.js";
import { compileRules } from "./procedure-rules.js";
import { createRevocationChecker, type RevocationChecker } from "./revocation.js";

/**
 * policyMessages are the client-facing messages of the policy's reasons.
 */
export const policyMessages: Readonly<Record<string, string>> = {
  untrusted: "client certificate not trusted",
  revoked: "client certificate revoked",
  crl_unavailable: "client certificate could not be checked: revocation list unavailable",
  stale_crl: "client certificate could not be checked: revocation list out of date",
  wrong_usage: "client certificate not issued for client authentication",
  invalid_certificate: "client certificate could not be read",
};

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
  | { readonly kind: "refused"; readonly reason: RefusalReason; readonly code: Code; readonly expiresAt: number }
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
  readonly lookupStore: (() => Promise<StoreVerdict>) | undefined;
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
  /** Runs the per-connection checks of a policy. */
  evaluate(policy: CompiledPolicy, peer: PeerCertificate, certificate: Certificate, context: EvaluationContext): Promise<Outcome>;
}

// Node 23.5 renamed `keyUsage` (which lists extended key usages) to
// `extKeyUsage`, keeping the old name as a deprecated alias.
function extendedKeyUsageOf(certificate: Certificate): readonly string[] | undefined {
  const x = certificate.x509 as { extKeyUsage?: string[]; keyUsage?: string[] };
  return "extKeyUsage" in x ? x.extKeyUsage : x.keyUsage;
}

function memo<T>(facts: Map<object, unknown>, key: object, compute: () => T): T {
  if (facts.has(key)) return facts.get(key) as T;
  const value = compute();
  facts.set(key, value);
  return value;
}

/**
 * compilePolicy checks the policy options and prepares them, at start-up.
 * It throws a `TypeError` naming the option for every configuration
 * mistake. `storeGet` is the store's `get`, the default issuer source.
 */
export function compilePolicy(options: PolicyOptions, hasStore: boolean, storeGet?: IssuerCertificateSource): PolicyEngine {
  const skew = options.clockSkewMs ?? 0;
  if (!(skew >= 0) || !Number.isFinite(skew)) throw new TypeError("certgate: clockSkewMs must be a non-negative number");
  if (options.expiryWarningDays !== undefined && !(options.expiryWarningDays >= 0)) {
    throw new TypeError("certgate: expiryWarningDays must be a non-negative number of days");
  }
  const sources = new Set<{ readonly revision: number }>();
  const caSets = new Map<object, CertificateSet>();
  const builders = new Map<string, ChainBuilder>();
  const builderIds = new Map<CertificateSet, number>();
  const checkers = new Map<object, Map<CertificateSet, { checker: RevocationChecker; chain: ChainBuilder }>>();
  let issuers: IssuerResolver | undefined;

  const caSet = (input: CertificateSetInput, where: string): CertificateSet => {
    if (input === undefined || input === null) throw new TypeError(`certgate: ${where} is required`);
    let set = caSets.get(input);
    if (set === undefined) {
      try {
        set = toCertificateSet(input);
      } catch (error) {
        throw new TypeError(`${(error as Error).message} (in ${where})`);
      }
      caSets.set(input, set);
      sources.add(set);
    }
    return set;
  };
  const builder = (set: CertificateSet, partial: boolean): ChainBuilder => {
    if (!builderIds.has(set)) builderIds.set(set, builderIds.size);
    const key = `${builderIds.get(set)}:${partial}`;
    let b = builders.get(key);
    if (b === undefined) {
      b = createChainBuilder(set, { allowPartialChain: partial, clockSkewMs: skew });
      builders.set(key, b);
    }
    return b;
  };

  function compileTrust(value: RuleOptions["validateTrust"], where: string): "tls" | ChainBuilder | undefined {
    if (value === undefined || value === false) return undefined;
    if (value === true || value === "tls") return "tls";
    if (typeof value !== "object" || value === null || !("ca" in value)) {
      throw new TypeError(`certgate: ${where} must be true, "tls" or { ca }`);
    }
    const trust = value as TrustOptions;
    return builder(caSet(trust.ca, `${where}.ca`), trust.allowPartialChain === true);
  }

  function compileRevocation(value: RuleOptions["validateRevocation"], trust: "tls" | ChainBuilder | undefined, trustCa: CertificateSetInput | undefined, where: string): CompiledPolicy["revocation"] {
    if (value === undefined || value === false) return undefined;
    if (typeof value !== "object" || value === null || !("crls" in value)) {
      throw new TypeError(`certgate: ${where} must be false or { crls, ca?, allowStale?, allowMissing? } (CRLs are required)`);
    }
    const revocation = value as RevocationOptions;
    const caInput = revocation.ca ?? trustCa;
    if (caInput === undefined) {
      throw new TypeError(`certgate: ${where} needs the CA certificates that sign the CRLs: set ${where}.ca, or validateTrust: { ca }`);
    }
    const set = caSet(caInput, `${where}.ca`);
    const perSet = checkers.get(revocation) ?? new Map<CertificateSet, { checker: RevocationChecker; chain: ChainBuilder }>();
    checkers.set(revocation, perSet);
    let found = perSet.get(set);
    if (found === undefined) {
      let crls: CrlSet;
      try {
        crls = toCrlSet(revocation.crls);
      } catch (error) {
        throw new TypeError(`${(error as Error).message} (in ${where}.crls)`);
      }
      sources.add(crls);
      found = {
        checker: createRevocationChecker(crls, set, {
          allowStale: revocation.allowStale === true,
          allowMissing: revocation.allowMissing === true,
          clockSkewMs: skew,
          ...(revocation.onError !== undefined && { onError: revocation.onError }),
        }),
        // The chain of the trust check when certgate built one; otherwise one
        // built only to find issuers.
        chain: typeof trust === "object" && revocation.ca === undefined ? trust : builder(set, true),
      };
      perSet.set(set, found);
    }
    return found;
  }

  const base: RuleOptions = {
    validateNotBefore: options.validateNotBefore,
    validateNotAfter: options.validateNotAfter,
    validateTrust: options.validateTrust,
    validateRevocation: options.validateRevocation,
    requireClientAuthUsage: options.requireClientAuthUsage,
    identities: options.identities,
    reportOnly: options.reportOnly,
  };
  const policies: CompiledPolicy[] = [];

  function compile(o: RuleOptions, rule: string, where: string, allow: ProcedureRule["allow"]): CompiledPolicy {
    // A string such as "true" must not silently turn a check off.
    for (const key of ["validateNotBefore", "validateNotAfter", "requireClientAuthUsage", "reportOnly"] as const) {
      if (o[key] !== undefined && typeof o[key] !== "boolean") {
        throw new TypeError(`certgate: ${where}${key} must be a boolean, got ${JSON.stringify(o[key])}`);
      }
    }
    const trust = compileTrust(o.validateTrust, `${where}validateTrust`);
    const trustCa = typeof o.validateTrust === "object" ? o.validateTrust.ca : undefined;
    const revocation = compileRevocation(o.validateRevocation, trust, trustCa, `${where}validateRevocation`);
    const identities =
      allow === "authenticated" || o.identities === undefined ? undefined : compileIdentities(o.identities, `${where}identities`);
    const identityChain = typeof trust === "object" ? trust : revocation?.chain;
    if (identities?.needsChain && identityChain === undefined) {
      throw new TypeError(`certgate: ${where}identities use issuerThumbprint, which needs the chain: set validateTrust: { ca } or validateRevocation.ca`);
    }
    if (identities?.needsIssuerLookup && issuers === undefined) {
      const source = options.issuerCertificates ?? storeGet;
      if (source === undefined) {
        throw new TypeError(`certgate: ${where}identities use issuerCertificateId: set issuerCertificates, or use a store with get()`);
      }
      issuers = createIssuerResolver(source);
      sources.add(issuers);
    }
    const policy: CompiledPolicy = {
      index: policies.length,
      rule,
      open: allow === "any",
      validateNotBefore: o.validateNotBefore ?? true,
      validateNotAfter: o.validateNotAfter ?? true,
      reportOnly: o.reportOnly === true,
      trust,
      revocation,
      requireClientAuthUsage: o.requireClientAuthUsage === true,
      identities,
      identityChain,
    };
    policies.push(policy);
    return policy;
  }

  const fallback = compile(base, "default", "", undefined);
  if (!hasStore && typeof fallback.trust !== "object" && !(fallback.trust === "tls" && fallback.identities !== undefined)) {
    throw new TypeError(
      "certgate: options.store is required (a CertificateStore), unless validateTrust is given CA certificates ({ ca }) or is \"tls\" with identities",
    );
  }
  const policyFor = compileRules(options.rules, base, (merged, rule, where, allow) => compile(merged, rule, where, allow), fallback);

  const sourceList = [...sources];
  async function evaluate(policy: CompiledPolicy, peer: PeerCertificate, certificate: Certificate, context: EvaluationContext): Promise<Outcome> {
    const { t, facts } = context;
    let expiresAt = Infinity;
    const refuse = (reason: RefusalReason, code: Code = Code.Unauthenticated): Outcome => ({ kind: "refused", reason, code, expiresAt });
    try {
      if (policy.requireClientAuthUsage && !allowsClientAuth(extendedKeyUsageOf(certificate))) return refuse("wrong_usage");
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
        if (!matched) return refuse("not_allowed", Code.PermissionDenied);
      }
      return { kind: "admitted", entry, expiresAt };
    } catch (error) {
      // The certificate parsed in Node but not in certgate's DER reader.
      return error instanceof RangeError ? refuse("invalid_certificate") : { kind: "error", error };
    }
  }

  return {
    get revision() {
      let sum = 0;
      for (const s of sourceList) sum += s.revision;
      return sum;
    },
    policies,
    policyFor,
    evaluate,
  };
}
