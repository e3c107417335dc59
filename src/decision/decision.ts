import { clockOf } from "../core/options.js";
import { createReporter, type Decision, type DecisionEvent, type DecisionVia } from "../core/decision-report.js";
import { createConnectionDecide, type Decide } from "./connection-decide.js";
import { enforcementOf, passThrough, type Enforcement } from "../core/enforcement.js";
import type { PeerCertificate } from "../core/peer-certificate.js";
import { issuerSourceOf } from "./store-lookup.js";
import { compilePolicy } from "../policy/policy.js";
import type { PolicyOptions } from "../policy/policy-options.js";
import type { CertificateStore } from "../core/store.js";
import { meterOf, type MetricsOptions } from "../core/metrics.js";
import { createDecisionMetrics } from "./decision-metrics.js";

export type { Decide } from "./connection-decide.js";

/**
 * ProcedureSource is a call whose procedure is built from its service and
 * method names, only when rules or `onDecision` need it or the call is
 * refused: a Connect `HandlerContext` or interceptor request is one.
 */
export interface ProcedureSource {
  readonly service: { readonly typeName: string };
  readonly method: { readonly name: string };
}

/**
 * Procedure names the procedure of a call: the string, such as
 * `/certgate.example.v1.EchoService/Echo` (a grpc-js call's path), or a
 * `ProcedureSource`.
 */
export type Procedure = string | ProcedureSource;

/**
 * procedureName returns the procedure string of a `Procedure`.
 */
export function procedureName(procedure: Procedure): string {
  return typeof procedure === "string" ? procedure : `/${procedure.service.typeName}/${procedure.method.name}`;
}

/**
 * DecisionCore is certgate's framework-neutral decision, shared by every
 * adapter (the Connect interceptor and gate, the store service, grpc-js).
 * An adapter reads the `PeerCertificate` of the call's connection (see
 * `readPeerCertificate`), calls `enforce`, and maps the `Enforcement`:
 * `admitted` hands `certificate` to the handler, `passed` goes on, `refused`
 * becomes the framework's error with `status`, `message` and `detail`.
 *
 * @example
 * const core = createDecisionCore({ store });
 * const result = core.enforce(peer, "/pkg.v1.Service/Method", "gate");
 * const settled = result instanceof Promise ? await result : result;
 * if (settled.kind === "refused") throw toFrameworkError(settled);
 */
export interface DecisionCore {
  /**
   * Decides one call, reports it to `onDecision` and says what to do with
   * it. Answers synchronously on a warm connection (no promise, no
   * allocation for an admitted call); a promise only when the connection has
   * no cached decision. Never rejects: a failure is a refusal. `decided`
   * is this call's decision when it was made already, by `decide` with the
   * same peer and procedure (the fast refusal path hands it over): it is
   * reported and enforced without deciding again.
   */
  enforce(
    peer: PeerCertificate | undefined,
    procedure: Procedure,
    via: DecisionVia,
    decided?: Decision | Promise<Decision>,
  ): Enforcement | Promise<Enforcement>;
  /**
   * Decides one call without reporting or enforcing it; `procedure` selects
   * the rule (an open procedure gets the default rule).
   */
  readonly decide: Decide;
  /** Whether there are rules, so that the decision depends on the procedure. */
  readonly needsProcedure: boolean;
  /** Whether a rule with `allow: "any"` leaves the procedure open. */
  isOpen(procedure: string): boolean;
  /** Calls `onDecision`, if set, with the event of one call, and counts it in the metrics; `decision` undefined for an open procedure. */
  report(decision: Decision | undefined, procedure: string, via: DecisionVia): void;
}

/**
 * ClientCertOptions configures `createClientCertInterceptor` and
 * `createClientCertGate`; both make the same decision from them. The
 * validation policy (`validateTrust`, `validateRevocation`, `identities`,
 * `rules`, `reportOnly`, ...) is described on `PolicyOptions`.
 */
export interface ClientCertOptions extends PolicyOptions, MetricsOptions {
  /**
   * Where admitted certificates come from. Required, unless `validateTrust`
   * is given CA certificates (`{ ca }`) or is `"tls"` with `identities`: a
   * trusted chain then admits, and identities narrow it down.
   */
  store?: CertificateStore;
  /**
   * Refuse certificates whose validity window has ended (notAfter), on every
   * call, also on connections opened before the end. By default, true.
   */
  validateNotAfter?: boolean;
  /**
   * Refuse certificates whose validity window has not begun (notBefore).
   * By default, true.
   */
  validateNotBefore?: boolean;
  /**
   * The current time, as epoch milliseconds or a Date, for tests.
   * By default, `Date.now`.
   */
  clock?: () => number | Date;
  /**
   * How long to wait for the store before refusing with
   * `store_unavailable`, in milliseconds. By default, 5000.
   */
  lookupTimeoutMs?: number;
  /**
   * Called once per call with the decision, for logs and metrics. By default,
   * nothing is called. Errors it throws are ignored.
   */
  onDecision?: (event: DecisionEvent) => void;
  /**
   * Give the `certgate.decisions` metric the `rpc.service` and `rpc.method`
   * attributes of each call (at most 1000 distinct procedures; the rest are
   * `_OTHER`). By default, false: decisions are counted by result, reason
   * and adapter only, which keeps the number of series small.
   */
  metricsProcedure?: boolean;
}

/**
 * validateOptions throws a `TypeError` naming the option when the options
 * are malformed. Configuration mistakes fail at start-up rather than turning
 * into a refusal (or an admission) of every call later. The policy options
 * are checked by `compilePolicy`.
 */
export function validateOptions(options: ClientCertOptions | undefined): void {
  if (typeof options !== "object" || options === null) {
    throw new TypeError("certgate: options.store is required (a CertificateStore); no options were given");
  }
  const { store, clock, lookupTimeoutMs, onDecision } = options;
  // No store is allowed when the policy admits by trust; compilePolicy checks that.
  if (store !== undefined && (typeof store !== "object" || store === null || typeof store.lookup !== "function")) {
    throw new TypeError("certgate: options.store is required (a CertificateStore)");
  }
  if (clock !== undefined && typeof clock !== "function") {
    throw new TypeError("certgate: options.clock must be a function returning epoch milliseconds or a Date");
  }
  if (
    lookupTimeoutMs !== undefined &&
    (typeof lookupTimeoutMs !== "number" || !(lookupTimeoutMs > 0) || lookupTimeoutMs > 2 ** 31 - 1)
  ) {
    throw new TypeError(
      `certgate: options.lookupTimeoutMs must be a number of milliseconds between 1 and 2147483647, got ${String(lookupTimeoutMs)}`,
    );
  }
  if (onDecision !== undefined && typeof onDecision !== "function") {
    throw new TypeError("certgate: options.onDecision must be a function");
  }
  for (const name of ["validateNotAfter", "validateNotBefore", "metricsProcedure"] as const) {
    if (options[name] !== undefined && typeof options[name] !== "boolean") {
      throw new TypeError(`certgate: options.${name} must be a boolean`);
    }
  }
}

/**
 * createDecide returns the `decide` of `createDecisionCore`.
 */
export function createDecide(options: ClientCertOptions): Decide {
  return createDecisionCore(options).decide;
}

/**
 * createDecisionCore checks the options (throwing a `TypeError` naming a
 * malformed one), compiles the policy and returns the decision: validity
 * window on every call, then trust, revocation, key usage, the store's
 * verdict and identities, cached per certificate until the store's or the
 * policy's revision changes.
 */
export function createDecisionCore(options: ClientCertOptions): DecisionCore {
  validateOptions(options);
  const { store } = options;
  const meter = meterOf(options.meterProvider);
  const engine = compilePolicy(options, store !== undefined, issuerSourceOf(store), meter);
  const needsProcedure = engine.policies.length > 1;
  const now = clockOf(options.clock);
  const metrics =
    meter === undefined
      ? undefined
      : createDecisionMetrics(meter, {
          withProcedure: options.metricsProcedure === true,
          // The expiry gauge needs a window even when onDecision has none.
          expiryWarningDays: options.expiryWarningDays ?? 30,
          now,
        });
  const decide = createConnectionDecide({
    engine,
    store,
    now,
    clockSkewMs: options.clockSkewMs ?? 0,
    lookupTimeoutMs: options.lookupTimeoutMs ?? 5000,
    onLookup: metrics?.lookedUp,
  });
  const isOpen = (procedure: string) => needsProcedure && engine.policyFor(procedure).open;
  const ruleOf = (procedure: string) => (needsProcedure ? engine.policyFor(procedure).rule : "default");
  const withProcedure = metrics !== undefined && options.metricsProcedure === true;
  const reporter = createReporter(options.onDecision, options.expiryWarningDays, now, ruleOf);

  function settle(decision: Decision, procedure: Procedure, name: string | undefined, via: DecisionVia): Enforcement {
    if (reporter !== undefined) {
      reporter(decision, name as string, via);
    }
    if (metrics !== undefined) {
      metrics.decided(decision, via, name);
    }
    if (decision.kind === "admitted") {
      return decision;
    }
    return enforcementOf(decision, name ?? procedureName(procedure));
  }

  return {
    decide,
    needsProcedure,
    isOpen,
    report(decision, procedure, via) {
      reporter?.(decision, procedure, via);
      metrics?.decided(decision, via, procedure);
    },
    enforce(peer, procedure, via, decided) {
      // The procedure string is built only when rules or onDecision need it.
      const name = needsProcedure || reporter !== undefined || withProcedure ? procedureName(procedure) : undefined;
      if (name !== undefined && isOpen(name)) {
        reporter?.(undefined, name, via);
        metrics?.decided(undefined, via, name);
        return passThrough;
      }
      const result = decided ?? decide(peer, name);
      if (result instanceof Promise) {
        return result.then((decision) => settle(decision, procedure, name, via));
      }
      return settle(result, procedure, name, via);
    },
  };
}
