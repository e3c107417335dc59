import type { ProcedureRule, RuleOptions } from "./policy-options.js";

const ruleKeys = new Set([
  "procedure",
  "allow",
  "validateNotBefore",
  "validateNotAfter",
  "validateTrust",
  "validateRevocation",
  "requireClientAuthUsage",
  "identities",
  "reportOnly",
]);
const procedurePattern = /^(\*|\/[A-Za-z_][A-Za-z0-9_.]*\/([A-Za-z_][A-Za-z0-9_]*|\*))$/;

/**
 * compileRules checks the per-procedure rules, compiles each (merged over
 * `base`, the top-level options) with `compile`, and returns the look-up of
 * a procedure's policy: the first rule naming it, else `fallback`. Each
 * procedure is matched once and the answer kept in a `Map`. It throws a
 * `TypeError` naming the rule for an unknown field, a pattern that is not a
 * procedure, or `allow` combined with checks it would ignore.
 */
export function compileRules<P>(
  given: readonly ProcedureRule[] | undefined,
  base: RuleOptions,
  compile: (merged: RuleOptions, rule: string, where: string, allow: ProcedureRule["allow"]) => P,
  fallback: P,
): (procedure: string | undefined) => P {
  const rules: { readonly patterns: readonly string[]; readonly policy: P }[] = [];
  const ruleList = given ?? [];
  if (!Array.isArray(ruleList)) throw new TypeError("certgate: rules must be an array");
  ruleList.forEach((rule: ProcedureRule, i) => {
    const where = `rules[${i}].`;
    if (typeof rule !== "object" || rule === null) throw new TypeError(`certgate: rules[${i}] must be an object`);
    for (const key of Object.keys(rule)) {
      if (!ruleKeys.has(key)) throw new TypeError(`certgate: rules[${i}] has an unknown field ${JSON.stringify(key)}`);
    }
    const patterns = typeof rule.procedure === "string" ? [rule.procedure] : rule.procedure;
    if (!Array.isArray(patterns) || patterns.length === 0)
      throw new TypeError(`certgate: rules[${i}].procedure is required`);
    for (const p of patterns) {
      if (typeof p !== "string" || !procedurePattern.test(p)) {
        throw new TypeError(
          `certgate: rules[${i}].procedure ${JSON.stringify(p)} must be "/pkg.Service/Method", "/pkg.Service/*" or "*"`,
        );
      }
    }
    const allow = rule.allow;
    if (allow !== undefined && allow !== "any" && allow !== "authenticated") {
      throw new TypeError(`certgate: rules[${i}].allow must be "any" or "authenticated"`);
    }
    if (
      allow === "any" &&
      Object.keys(rule).some(
        (k) => k !== "procedure" && k !== "allow" && (rule as unknown as Record<string, unknown>)[k] !== undefined,
      )
    ) {
      throw new TypeError(`certgate: rules[${i}] has allow: "any", which checks nothing; remove its other fields`);
    }
    if (allow === "authenticated" && rule.identities !== undefined) {
      throw new TypeError(`certgate: rules[${i}] has allow: "authenticated" and identities; use one`);
    }
    const merged: RuleOptions = { ...base };
    for (const key of ruleKeys) {
      const value = (rule as unknown as Record<string, unknown>)[key];
      if (key !== "procedure" && key !== "allow" && value !== undefined)
        (merged as Record<string, unknown>)[key] = value;
    }
    rules.push({ patterns, policy: compile(merged, patterns.join(" "), where, allow) });
  });

  const byProcedure = new Map<string, P>();
  function policyFor(procedure: string | undefined): P {
    if (procedure === undefined || rules.length === 0) return fallback;
    let policy = byProcedure.get(procedure);
    if (policy === undefined) {
      const slash = procedure.lastIndexOf("/");
      const service = `${procedure.slice(0, slash)}/*`;
      policy =
        rules.find((r) => r.patterns.some((p) => p === "*" || p === procedure || p === service))?.policy ?? fallback;
      if (byProcedure.size < 10_000) byProcedure.set(procedure, policy);
    }
    return policy;
  }

  return policyFor;
}
