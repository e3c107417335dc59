import { Code, ConnectError } from "@connectrpc/connect";
import type { Certificate } from "./certificate.js";
import { warnOnce, type PeerCertificate } from "./peer.js";
import type { CertificateStore, RefusalReason, StoreEntry, StoredCertificate, StoreVerdict } from "./store.js";
import { ClientCertificateErrorSchema } from "./gen/certgate/v1/errors_pb.js";
import type { IssuerCertificateSource } from "./policy/identity-match.js";
import type { PolicyOptions } from "./policy/policy-options.js";
import { compilePolicy, policyMessages, type CompiledPolicy, type Outcome } from "./policy/policy.js";

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
 * Decision is the result of checking one call's client certificate.
 */
export type Decision =
  | {
      readonly kind: "admitted";
      readonly certificate: Certificate;
      /** The store entry that admitted the certificate. */
      readonly entry: StoreEntry;
      /**
       * The peer, when its certificate came through a proxy or it sent
       * forwarding headers that were ignored; undefined otherwise.
       */
      readonly peer?: PeerCertificate;
    }
  | {
      readonly kind: "refused";
      readonly reason: RefusalReason;
      /** A short lowercase message for the client; never lists allowed certificates. */
      readonly message: string;
      readonly certificate: Certificate | undefined;
      /**
       * The status code: `PermissionDenied` when identities refused a
       * certificate that passed every other check. By default, `Unauthenticated`.
       */
      readonly code?: Code;
      /** Whether the policy is report-only: the call goes through anyway. */
      readonly reportOnly?: boolean;
      /**
       * The peer, when its certificate came through a proxy or it sent
       * forwarding headers that were ignored; undefined otherwise.
       */
      readonly peer?: PeerCertificate;
    }
  | {
      readonly kind: "error";
      readonly reason: "store_unavailable";
      readonly message: string;
      readonly certificate: Certificate;
      /** What went wrong, for logs; never shown to the client. */
      readonly error: unknown;
      /** Whether the policy is report-only: the call goes through anyway. */
      readonly reportOnly?: boolean;
      /**
       * The peer, when its certificate came through a proxy or it sent
       * forwarding headers that were ignored; undefined otherwise.
       */
      readonly peer?: PeerCertificate;
    };

/**
 * DecisionEvent is what `onDecision` receives for every call.
 */
export interface DecisionEvent {
  /**
   * What was decided. A store error is a refusal. A refused call does not go
   * through, unless `reportOnly` is true.
   */
  readonly kind: "admitted" | "refused";
  /** The machine-readable reason of a refusal; undefined when admitted. */
  readonly reason: RefusalReason | undefined;
  /** The procedure called, such as `/certgate.example.v1.EchoService/Echo`. */
  readonly procedure: string;
  /** The SHA-256 thumbprint of the client certificate, if one was presented. */
  readonly thumbprint: string | undefined;
  readonly certificate: Certificate | undefined;
  /** The store entry that admitted the call. */
  readonly entry: StoreEntry | undefined;
  /** The underlying failure of a store error. */
  readonly error: unknown;
  /** Which adapter decided. */
  readonly via: "interceptor" | "gate";
  /**
   * Where the certificate came from: `"proxy"` when a trusted proxy forwarded
   * it in a header (see `createPeerCertificateContextValues`), else `"tls"`.
   */
  readonly source?: "tls" | "proxy";
  /**
   * Certificate-forwarding headers that were ignored because the request did
   * not come from a trusted proxy; undefined when there were none. A client
   * sending them is probing or misconfigured.
   */
  readonly ignoredForwardingHeaders?: readonly string[];
  /**
   * Whether the policy is report-only (`reportOnly`): a call with `kind:
   * "refused"` went through anyway.
   */
  readonly reportOnly?: boolean;
  /** The status code a refusal has (or would have, report-only); undefined when admitted. */
  readonly code?: Code;
  /** The rule that applied: its procedure pattern(s), or `default`. */
  readonly rule?: string;
  /** Whether a rule with `allow: "any"` left the procedure open (nothing was checked). */
  readonly open?: boolean;
  /** Whether the certificate expires within `expiryWarningDays`. */
  readonly expiresSoon?: boolean;
}

/**
 * Decide checks the certificate of one call. It answers synchronously when
 * the connection's cached verdict is still good, so a warm call costs no
 * allocation and no promise.
 */
export type Decide = (peer: PeerCertificate | undefined, procedure?: string) => Decision | Promise<Decision>;

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

// A Map, not an object literal: a store's reason such as "constructor" must
// not find Object.prototype's members.
const messages: ReadonlyMap<string, string> = new Map(Object.entries({
  no_certificate: "no client certificate presented",
  invalid_certificate: "client certificate could not be read",
  expired: "client certificate expired",
  not_yet_valid: "client certificate not yet valid",
  not_allowed: "client certificate not allowed",
  store_unavailable: "client certificate could not be checked: store unavailable",
  ...policyMessages,
}));
const permissionDenied = "client certificate not allowed to call this procedure";

/**
 * refusalMessage returns the client-facing message for a reason.
 */
export function refusalMessage(reason: RefusalReason): string {
  return messages.get(reason) ?? "client certificate refused";
}

function refused(reason: RefusalReason, certificate: Certificate | undefined): Decision {
  return { kind: "refused", reason, message: refusalMessage(reason), certificate };
}

/**
 * DecisionCore is the decision shared by the interceptor and the gate, with
 * what they need around it.
 */
export interface DecisionCore {
  /** Decides one call; `procedure` selects the rule. */
  readonly decide: Decide;
  /** Whether there are rules, so that the decision depends on the procedure. */
  readonly needsProcedure: boolean;
  /** Whether a rule with `allow: "any"` leaves the procedure open. */
  isOpen(procedure: string): boolean;
  /** Calls `onDecision`, if set, with the event of one call; `decision` undefined for an open procedure. */
  report(decision: Decision | undefined, procedure: string, via: "interceptor" | "gate"): void;
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
  return createDecisionCore(options).decide;
}

/**
 * createDecisionCore is `createDecide` with the rule look-up and the
 * `onDecision` reporting the adapters use.
 */
export function createDecisionCore(options: ClientCertOptions): DecisionCore {
  validateOptions(options);
  const { store } = options;
  const engine = compilePolicy(options, store !== undefined, issuerSourceOf(store));
  const fallback = engine.policyFor(undefined);
  const needsProcedure = engine.policies.length > 1;
  const skew = options.clockSkewMs ?? 0;
  const clock = options.clock;
  const now =
    clock === undefined
      ? Date.now
      : () => {
          const t = +clock();
          if (Number.isNaN(t)) {
            throw new Error("certgate: options.clock returned an invalid time");
          }
          return t;
        };
  const lookupTimeoutMs = options.lookupTimeoutMs ?? 5000;
  const cache = new WeakMap<PeerCertificate, ConnectionState>();
  const noCertificate = refused("no_certificate", undefined);
  const unreadable = refused("invalid_certificate", undefined);

  // Asks the store, giving up after lookupTimeoutMs. Never rejects: whatever
  // the store does, the outcome is a verdict.
  function lookupStore(s: CertificateStore, certificate: Certificate): Promise<StoreVerdict> {
    const controller = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<StoreVerdict>((resolve) => {
      timer = setTimeout(() => {
        const error = new Error(`certificate store did not answer within ${lookupTimeoutMs} ms`);
        controller.abort(error);
        resolve({ kind: "error", error });
      }, lookupTimeoutMs);
      timer.unref();
    });
    let verdict: Promise<unknown>;
    try {
      verdict = Promise.resolve(s.lookup(certificate, controller.signal));
    } catch (error) {
      verdict = Promise.resolve({ kind: "error", error });
    }
    return Promise.race([verdict, timeout]).then(
      (v) => {
        clearTimeout(timer);
        return toVerdict(v);
      },
      (error: unknown): StoreVerdict => {
        clearTimeout(timer);
        return { kind: "error", error };
      },
    );
  }

  function evaluate(peer: PeerCertificate, certificate: Certificate, policy: CompiledPolicy, state: ConnectionState, t: number): Promise<Decision> {
    const facts = state.facts;
    const lookup =
      store === undefined
        ? undefined
        : () => {
            let verdict = facts.get(store) as Promise<StoreVerdict> | undefined;
            if (verdict === undefined) {
              verdict = lookupStore(store, certificate);
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

  const { onDecision } = options;
  const warnMs = options.expiryWarningDays === undefined ? undefined : options.expiryWarningDays * 86_400_000;
  return {
    decide: withForwarding(decide),
    needsProcedure,
    isOpen: (procedure) => needsProcedure && engine.policyFor(procedure).open,
    report(decision, procedure, via) {
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
        try {
          onDecision({
            kind: "admitted", reason: undefined, procedure, thumbprint: undefined, certificate: undefined,
            entry: undefined, error: undefined, via, source: "tls", reportOnly: false, rule, open: true, expiresSoon: false,
          });
        } catch {
          // A failing hook must not change the decision.
        }
        return;
      }
      reportDecision(onDecision, decision, procedure, via, { rule, expiresSoon });
    },
  };
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
          ? { kind: "refused", reason: outcome.reason, message: permissionDenied, certificate, code: Code.PermissionDenied }
          : refused(outcome.reason, certificate),
        policy,
      );
    default:
      return mark(failure(certificate, outcome.error), policy);
  }
}

// The store's `get`, when it has one, is where `issuerCertificateId` looks.
function issuerSourceOf(store: CertificateStore | undefined): IssuerCertificateSource | undefined {
  const get = (store as { get?: unknown } | undefined)?.get;
  if (store === undefined || typeof get !== "function") {
    return undefined;
  }
  return {
    get: (id: string) => (get as (id: string) => Promise<StoredCertificate | undefined>).call(store, id),
    onChange: (listener) => store.onChange(listener),
  };
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

// Configuration mistakes fail at start-up, naming the option, rather than
// turning into a refusal (or an admission) of every call later.
function validateOptions(options: ClientCertOptions | undefined): void {
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

// A store's answer, checked: anything that is not a verdict is a broken
// store, which fails closed.
function toVerdict(verdict: unknown): StoreVerdict {
  const v = verdict as StoreVerdict | null | undefined;
  switch (v?.kind) {
    case "admitted":
      return { kind: "admitted", entry: v.entry, expiresAt: expiryOf(v) };
    case "refused":
      return { kind: "refused", reason: v.reason, expiresAt: expiryOf(v) };
    case "error":
      return v;
    default:
      return {
        kind: "error",
        error: new Error(`certificate store answered with an invalid verdict: ${describe(verdict)}`),
      };
  }
}

function failure(certificate: Certificate, error: unknown): Decision {
  return {
    kind: "error",
    reason: "store_unavailable",
    message: refusalMessage("store_unavailable"),
    certificate,
    error,
  };
}

function expiryOf(verdict: unknown): number {
  const expiresAt = (verdict as { expiresAt?: unknown }).expiresAt;
  return typeof expiresAt === "number" ? expiresAt : Infinity;
}

function describe(value: unknown): string {
  if (typeof value !== "object" || value === null) {
    return String(value);
  }
  const kind = (value as { kind?: unknown }).kind;
  return `an object of kind ${typeof kind === "string" ? JSON.stringify(kind.slice(0, 40)) : String(kind)}`;
}

// The reasons a client may see. A store may refuse with a reason of its own,
// which could name other certificates: the client sees "refused" instead.
const publicReasons: ReadonlySet<string> = new Set([
  "no_certificate", "invalid_certificate", "expired", "not_yet_valid", "not_allowed", "store_unavailable",
  "untrusted", "revoked", "crl_unavailable", "stale_crl", "wrong_usage",
]);

function detailReason(reason: RefusalReason): string {
  return publicReasons.has(reason) ? reason : "refused";
}

/**
 * decisionError turns a refusal into the `ConnectError` the client sees:
 * `Code.Unauthenticated` (HTTP 401, grpc-status 16), or
 * `Code.PermissionDenied` (HTTP 403, grpc-status 7) when identities refused
 * a certificate that passed every other check. The reason travels as a
 * `certgate.v1.ClientCertificateError` error detail.
 */
export function decisionError(decision: Exclude<Decision, { kind: "admitted" }>, procedure = ""): ConnectError {
  return new ConnectError(
    decision.message,
    decision.kind === "refused" ? (decision.code ?? Code.Unauthenticated) : Code.Unauthenticated,
    undefined,
    [{ desc: ClientCertificateErrorSchema, value: { reason: detailReason(decision.reason), procedure } }],
    decision.kind === "error" ? decision.error : undefined,
  );
}

/**
 * reportDecision calls `onDecision`, if set, with the event of one call.
 */
export function reportDecision(
  onDecision: ((event: DecisionEvent) => void) | undefined,
  decision: Decision,
  procedure: string,
  via: "interceptor" | "gate",
  extra?: { readonly rule?: string; readonly expiresSoon?: boolean },
): void {
  if (onDecision === undefined) {
    return;
  }
  const certificate = decision.certificate;
  try {
    onDecision({
      kind: decision.kind === "admitted" ? "admitted" : "refused",
      reason: decision.kind === "admitted" ? undefined : decision.reason,
      procedure,
      thumbprint: certificate?.sha256,
      certificate,
      entry: decision.kind === "admitted" ? decision.entry : undefined,
      error: decision.kind === "error" ? decision.error : undefined,
      via,
      source: decision.peer?.source ?? "tls",
      ignoredForwardingHeaders: decision.peer?.ignoredForwardingHeaders,
      reportOnly: decision.kind !== "admitted" && decision.reportOnly === true,
      code:
        decision.kind === "admitted"
          ? undefined
          : decision.kind === "refused"
            ? (decision.code ?? Code.Unauthenticated)
            : Code.Unauthenticated,
      rule: extra?.rule,
      open: false,
      expiresSoon: extra?.expiresSoon ?? false,
    });
  } catch {
    // A failing hook must not change the decision.
  }
}
