// What a decision is, and how `onDecision` hears of it. The adapters turn a
// refusal into their framework's error (see `Enforcement`).
import type { Certificate } from "./certificate.js";
import type { PeerCertificate } from "./peer-certificate.js";
import {
  refusalMessage,
  refusals,
  statusCodes,
  type Refusal,
  type RefusalStatus,
  type StatusCode,
} from "./refusal-reasons.js";
import type { RefusalReason, StoreEntry } from "./store.js";

/**
 * DecisionVia names the adapter that decided a call, as `onDecision` reports it
 * (`authz`: `certgate authz`, for a proxy).
 */
export type DecisionVia = "interceptor" | "gate" | "grpc-js" | "authz";

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
       * The status: `"permission_denied"` when identities refused a
       * certificate that passed every other check, else `"unauthenticated"`.
       */
      readonly status: RefusalStatus;
      /** The status as a number, equal to Connect's `Code` (16 or 7). */
      readonly code: StatusCode;
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
      readonly status: "unauthenticated";
      readonly code: StatusCode;
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
  readonly via: DecisionVia;
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
  /**
   * The status code a refusal has (or would have, report-only), equal to
   * Connect's `Code` (16 Unauthenticated, 7 PermissionDenied); undefined when admitted.
   */
  readonly code?: StatusCode;
  /** The rule that applied: its procedure pattern(s), or `default`. */
  readonly rule?: string;
  /** Whether a rule with `allow: "any"` left the procedure open (nothing was checked). */
  readonly open?: boolean;
  /** Whether the certificate expires within `expiryWarningDays`. */
  readonly expiresSoon?: boolean;
}

/**
 * refused returns the refusal of a certificate (or of its absence) for a
 * reason, with the reason's client-facing message and status.
 */
export function refused(reason: RefusalReason, certificate: Certificate | undefined): Decision {
  return {
    kind: "refused",
    reason,
    message: refusalMessage(reason),
    certificate,
    status: "unauthenticated",
    code: statusCodes.unauthenticated,
  };
}

/**
 * refusedAs returns the refusal of a certificate for an entry of
 * `refusals`, optionally with a message of its own.
 */
export function refusedAs(refusal: Refusal, certificate: Certificate | undefined, message = refusal.message): Decision {
  return {
    kind: "refused",
    reason: refusal.reason,
    message,
    certificate,
    status: refusal.status,
    code: statusCodes[refusal.status],
  };
}

/**
 * deniedProcedure returns the refusal of a certificate that passed every
 * check but the identities of the procedure's rule: permission denied.
 */
export function deniedProcedure(certificate: Certificate): Decision {
  return refusedAs(refusals.procedure_not_allowed, certificate);
}

/**
 * failure returns the decision for a certificate that could not be checked
 * (a store, clock or policy failure), which refuses the call.
 */
export function failure(certificate: Certificate, error: unknown): Decision {
  return {
    kind: "error",
    reason: "store_unavailable",
    message: refusals.store_unavailable.message,
    certificate,
    error,
    status: "unauthenticated",
    code: statusCodes.unauthenticated,
  };
}

/**
 * reportDecision calls `onDecision`, if set, with the event of one call.
 */
export function reportDecision(
  onDecision: ((event: DecisionEvent) => void) | undefined,
  decision: Decision,
  procedure: string,
  via: DecisionVia,
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
      code: decision.kind === "admitted" ? undefined : decision.code,
      rule: extra?.rule,
      open: false,
      expiresSoon: extra?.expiresSoon ?? false,
    });
  } catch {
    // A failing hook must not change the decision.
  }
}

/**
 * reportOpen calls `onDecision` with the event of a call to a procedure that
 * a rule with `allow: "any"` left open: admitted, nothing checked.
 */
export function reportOpen(
  onDecision: (event: DecisionEvent) => void,
  procedure: string,
  via: DecisionVia,
  rule: string,
): void {
  try {
    onDecision({
      kind: "admitted",
      reason: undefined,
      procedure,
      thumbprint: undefined,
      certificate: undefined,
      entry: undefined,
      error: undefined,
      via,
      source: "tls",
      reportOnly: false,
      rule,
      open: true,
      expiresSoon: false,
    });
  } catch {
    // A failing hook must not change the decision.
  }
}

/**
 * Reporter calls `onDecision` with the event of one call; `decision`
 * undefined is a procedure left open by `allow: "any"`.
 */
export type Reporter = (decision: Decision | undefined, procedure: string, via: DecisionVia) => void;

/**
 * createReporter returns the `Reporter` of a decision core, or undefined
 * when there is no `onDecision`, so that the warm path skips it entirely.
 * `ruleOf` names the rule that applies to a procedure; `now` is the clock
 * the `expiresSoon` flag (`expiryWarningDays`) is read with.
 */
export function createReporter(
  onDecision: ((event: DecisionEvent) => void) | undefined,
  expiryWarningDays: number | undefined,
  now: () => number,
  ruleOf: (procedure: string) => string,
): Reporter | undefined {
  if (onDecision === undefined) {
    return undefined;
  }
  const warnMs = expiryWarningDays === undefined ? undefined : expiryWarningDays * 86_400_000;
  return (decision, procedure, via) => {
    const rule = ruleOf(procedure);
    if (decision === undefined) {
      reportOpen(onDecision, procedure, via, rule);
      return;
    }
    let expiresSoon = false;
    const certificate = decision.certificate;
    if (warnMs !== undefined && certificate !== undefined) {
      try {
        expiresSoon = certificate.notAfter.getTime() - now() < warnMs;
      } catch {
        // A broken clock already refused the call; no warning to add.
      }
    }
    reportDecision(onDecision, decision, procedure, via, { rule, expiresSoon });
  };
}
