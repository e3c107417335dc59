import type { DecisionEvent } from "./decision-report.js";
import type { PolicyOptions } from "../policy/policy-options.js";
import type { CertificateStore } from "./store.js";

/**
 * ClientCertOptions configures `createClientCertInterceptor` and
 * `createClientCertGate`; both make the same decision from them. The
 * validation policy (`validateTrust`, `validateRevocation`, `identities`,
 * `rules`, `reportOnly`, ...) is described on `PolicyOptions`.
 */
export interface ClientCertOptions extends PolicyOptions {
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
  for (const name of ["validateNotAfter", "validateNotBefore"] as const) {
    if (options[name] !== undefined && typeof options[name] !== "boolean") {
      throw new TypeError(`certgate: options.${name} must be a boolean`);
    }
  }
}
