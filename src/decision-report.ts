// What a decision is, and how it reaches the outside: the client sees a
// status code, a fixed message and a `ClientCertificateError` detail (each
// adapter turns them into its framework's error), `onDecision` sees a
// DecisionEvent. Nothing here loads a framework.
import type { Certificate } from "./certificate.js";
import type { PeerCertificate } from "./peer-certificate.js";
import { Code } from "./status-code.js";
import { policyMessages } from "./policy/policy.js";
import type { RefusalReason, StoreEntry } from "./store.js";

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
 * DecisionVia names the adapter that decided: Connect's interceptor or
 * request gate, or the grpc-js server interceptor.
 */
export type DecisionVia = "interceptor" | "gate" | "grpc-js";

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
  /** The status code a refusal has (or would have, report-only); undefined when admitted. */
  readonly code?: Code;
  /** The rule that applied: its procedure pattern(s), or `default`. */
  readonly rule?: string;
  /** Whether a rule with `allow: "any"` left the procedure open (nothing was checked). */
  readonly open?: boolean;
  /** Whether the certificate expires within `expiryWarningDays`. */
  readonly expiresSoon?: boolean;
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

/**
 * refused returns the refusal of a certificate (or of its absence) for a
 * reason, with the reason's client-facing message.
 */
export function refused(reason: RefusalReason, certificate: Certificate | undefined): Decision {
  return { kind: "refused", reason, message: refusalMessage(reason), certificate };
}

/**
 * deniedProcedure returns the refusal of a certificate that passed every
 * check but the identities of the procedure's rule: `Code.PermissionDenied`.
 */
export function deniedProcedure(reason: RefusalReason, certificate: Certificate): Decision {
  return { kind: "refused", reason, message: permissionDenied, certificate, code: Code.PermissionDenied };
}

/**
 * failure returns the decision for a certificate that could not be checked
 * (a store, clock or policy failure), which refuses the call.
 */
export function failure(certificate: Certificate, error: unknown): Decision {
  return {
    kind: "error",
    reason: "store_unavailable",
    message: refusalMessage("store_unavailable"),
    certificate,
    error,
  };
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
 * refusalCode returns the status code of a refusal: `Code.Unauthenticated`
 * (grpc-status 16), or `Code.PermissionDenied` (grpc-status 7) when
 * identities refused a certificate that passed every other check.
 */
export function refusalCode(decision: Exclude<Decision, { kind: "admitted" }>): Code {
  return decision.kind === "refused" ? (decision.code ?? Code.Unauthenticated) : Code.Unauthenticated;
}

/**
 * refusalDetail returns the fields of the `certgate.v1.ClientCertificateError`
 * detail a refusal carries: the public reason (a store's own reason, which
 * could name other certificates, becomes `refused`) and the procedure.
 */
export function refusalDetail(
  decision: Exclude<Decision, { kind: "admitted" }>,
  procedure: string,
): { reason: string; procedure: string } {
  return { reason: detailReason(decision.reason), procedure };
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
      code: decision.kind === "admitted" ? undefined : refusalCode(decision),
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
      kind: "admitted", reason: undefined, procedure, thumbprint: undefined, certificate: undefined,
      entry: undefined, error: undefined, via, source: "tls", reportOnly: false, rule, open: true, expiresSoon: false,
    });
  } catch {
    // A failing hook must not change the decision.
  }
}
