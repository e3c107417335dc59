// Compiles the options of one rule (or of the top level, the default rule)
// into a `CompiledPolicy`, sharing CA sets, chain builders and revocation
// checkers between rules that name the same inputs.
import { toCertificateSet, type CertificateSet, type CertificateSetInput } from "./certificate-set.js";
import { createChainBuilder, type ChainBuilder } from "./chain.js";
import { mergeCrlSets, toCrlSet, type CrlSet } from "./crl-set.js";
import {
  compileIdentities,
  createIssuerResolver,
  type IssuerCertificateSource,
  type IssuerResolver,
} from "./identity-match.js";
import type { CompiledPolicy } from "./policy.js";
import type { ProcedureRule, RevocationOptions, RuleOptions, TrustOptions } from "./policy-options.js";
import type { MetricsMeter } from "../core/metrics.js";
import { checkOnlineOptions, createOnlineSources } from "./online-options.js";
import { createRevocationMetrics, type RevocationMetrics } from "./revocation-metrics.js";
import { createOnlineRevocationChecker } from "./online-revocation.js";
import { createRevocationChecker, type RevocationChecker } from "./revocation.js";

type Revocation = NonNullable<CompiledPolicy["revocation"]>;

/**
 * RuleCompiler compiles rules, and keeps what they share.
 */
export interface RuleCompiler {
  /** Compiles one rule's merged options; `where` prefixes option names in errors. */
  compile(options: RuleOptions, rule: string, where: string, allow: ProcedureRule["allow"]): CompiledPolicy;
  /** Every compiled policy, by `index`. */
  readonly policies: readonly CompiledPolicy[];
  /** The changing inputs (CA sets, CRL sets, the issuer source): their revisions sum to the policy's. */
  readonly sources: ReadonlySet<{ readonly revision: number }>;
  /** Resolves `issuerCertificateId`, once a rule needs it. */
  readonly issuers: IssuerResolver | undefined;
}

/**
 * createRuleCompiler returns a `RuleCompiler`. `issuerSource` is where
 * `issuerCertificateId` identities find certificates (`issuerCertificates`,
 * else the store's `get`); `meter`, if any, records online revocation's
 * fetches.
 */
export function createRuleCompiler(
  clockSkewMs: number,
  issuerSource: IssuerCertificateSource | undefined,
  meter?: MetricsMeter,
): RuleCompiler {
  const sources = new Set<{ readonly revision: number }>();
  const caSets = new Map<object, CertificateSet>();
  const builders = new Map<string, ChainBuilder>();
  const builderIds = new Map<CertificateSet, number>();
  const checkers = new Map<object, Map<CertificateSet, Revocation>>();
  const policies: CompiledPolicy[] = [];
  let issuers: IssuerResolver | undefined;
  let revocationMetrics: RevocationMetrics | undefined;

  function caSet(input: CertificateSetInput, where: string): CertificateSet {
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
  }

  function builder(set: CertificateSet, partial: boolean): ChainBuilder {
    if (!builderIds.has(set)) builderIds.set(set, builderIds.size);
    const key = `${builderIds.get(set)}:${partial}`;
    let b = builders.get(key);
    if (b === undefined) {
      b = createChainBuilder(set, { allowPartialChain: partial, clockSkewMs });
      builders.set(key, b);
    }
    return b;
  }

  function compileTrust(value: RuleOptions["validateTrust"], where: string): "tls" | ChainBuilder | undefined {
    if (value === undefined || value === false) return undefined;
    if (value === true || value === "tls") return "tls";
    if (typeof value !== "object" || value === null || !("ca" in value)) {
      throw new TypeError(`certgate: ${where} must be true, "tls" or { ca }`);
    }
    const trust = value as TrustOptions;
    return builder(caSet(trust.ca, `${where}.ca`), trust.allowPartialChain === true);
  }

  function compileRevocation(
    value: RuleOptions["validateRevocation"],
    trust: "tls" | ChainBuilder | undefined,
    trustCa: CertificateSetInput | undefined,
    where: string,
  ): Revocation | undefined {
    if (value === undefined || value === false) return undefined;
    if (typeof value !== "object" || value === null) {
      throw new TypeError(
        `certgate: ${where} must be false or { crls?, ocsp?, crlDistributionPoints?, ca?, allowStale?, allowMissing? }`,
      );
    }
    const revocation = value as RevocationOptions;
    const online = checkOnlineOptions(revocation, where);
    if (revocation.crls === undefined && online.ocsp === "off" && !online.crlDistributionPoints) {
      throw new TypeError(
        `certgate: ${where} needs a revocation source: crls, ocsp: "soft-fail" | "hard-fail", or crlDistributionPoints: true`,
      );
    }
    const caInput = revocation.ca ?? trustCa;
    if (caInput === undefined) {
      throw new TypeError(
        `certgate: ${where} needs the CA certificates that issued the certificates and sign the CRLs: set ${where}.ca, or validateTrust: { ca }`,
      );
    }
    const set = caSet(caInput, `${where}.ca`);
    const perSet = checkers.get(revocation) ?? new Map<CertificateSet, Revocation>();
    checkers.set(revocation, perSet);
    let found = perSet.get(set);
    if (found === undefined) {
      let files: CrlSet | undefined;
      try {
        files = revocation.crls === undefined ? undefined : toCrlSet(revocation.crls);
      } catch (error) {
        throw new TypeError(`${(error as Error).message} (in ${where}.crls)`);
      }
      if (meter !== undefined && (online.ocsp !== "off" || online.crlDistributionPoints)) {
        revocationMetrics ??= createRevocationMetrics(meter);
      }
      const sources_ = createOnlineSources(online, clockSkewMs, revocation.onError, revocationMetrics);
      const fetched = sources_.distributionPoints?.set;
      const crls = files !== undefined && fetched !== undefined ? mergeCrlSets(files, fetched) : (files ?? fetched);
      const crlChecker =
        crls === undefined
          ? undefined
          : createRevocationChecker(crls, set, {
              allowStale: revocation.allowStale === true,
              allowMissing: revocation.allowMissing === true,
              clockSkewMs,
              ...(revocation.onError !== undefined && { onError: revocation.onError }),
            });
      if (crls !== undefined) sources.add(crls);
      found = {
        checker:
          sources_.ocsp === undefined && sources_.distributionPoints === undefined
            ? (crlChecker as RevocationChecker)
            : createOnlineRevocationChecker({
                crls: crlChecker,
                distributionPoints: sources_.distributionPoints,
                ocsp: sources_.ocsp,
                ocspMode: online.ocsp,
              }),
        // The chain of the trust check when certgate built one; otherwise one
        // built only to find issuers.
        chain: typeof trust === "object" && revocation.ca === undefined ? trust : builder(set, true),
      };
      perSet.set(set, found);
    }
    return found;
  }

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
      allow === "authenticated" || o.identities === undefined
        ? undefined
        : compileIdentities(o.identities, `${where}identities`);
    const identityChain = typeof trust === "object" ? trust : revocation?.chain;
    if (identities?.needsChain && identityChain === undefined) {
      throw new TypeError(
        `certgate: ${where}identities use issuerThumbprint, which needs the chain: set validateTrust: { ca } or validateRevocation.ca`,
      );
    }
    if (identities?.needsIssuerLookup && issuers === undefined) {
      if (issuerSource === undefined) {
        throw new TypeError(
          `certgate: ${where}identities use issuerCertificateId: set issuerCertificates, or use a store with get()`,
        );
      }
      issuers = createIssuerResolver(issuerSource);
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

  return {
    compile,
    policies,
    sources,
    get issuers() {
      return issuers;
    },
  };
}
