// What an adapter does with a decision: let the call through (giving the
// handler the admitted certificate) or refuse it with a status, a message and
// the fields of the `certgate.v1.ClientCertificateError` detail. Every server
// goes through `enforcementOf`, so they all refuse alike.
import type { Decision } from "./decision-report.js";
import { publicReason, type RefusalStatus, type StatusCode } from "./refusal-reasons.js";

/**
 * Admission is an admitted call: the handler gets `certificate`. It is the
 * admitted `Decision` itself, so that a warm call allocates nothing.
 */
export type Admission = Extract<Decision, { kind: "admitted" }>;

/**
 * PassThrough is a call that goes through without an admitted certificate:
 * a procedure left open by `allow: "any"`, or a refusal of a report-only
 * policy.
 */
export interface PassThrough {
  readonly kind: "passed";
  readonly certificate: undefined;
}

/**
 * ClientCertificateErrorDetail is the content of the
 * `certgate.v1.ClientCertificateError` error detail of a refusal.
 */
export interface ClientCertificateErrorDetail {
  /** The public reason, such as `expired`; a store's own reason is `refused`. */
  readonly reason: string;
  /** The procedure called, such as `/certgate.example.v1.EchoService/Echo`. */
  readonly procedure: string;
}

/**
 * EnforcedRefusal is a refused call, in framework-neutral terms: each adapter
 * maps `status` to its framework's error (Connect: `Code.Unauthenticated` /
 * `Code.PermissionDenied`; grpc-js: `status.UNAUTHENTICATED` /
 * `status.PERMISSION_DENIED`), with `message` and the `detail`.
 */
export interface EnforcedRefusal {
  readonly kind: "refused";
  readonly status: RefusalStatus;
  /** `status` as gRPC's (and Connect's) numeric code: 16 or 7. */
  readonly code: StatusCode;
  /** The client-facing message; never lists allowed certificates. */
  readonly message: string;
  readonly detail: ClientCertificateErrorDetail;
  /** The underlying failure of a store error, for the error's cause; never sent. */
  readonly cause: unknown;
  readonly decision: Exclude<Decision, { kind: "admitted" }>;
}

/**
 * Enforcement is what an adapter does with one call: `admitted` (hand
 * `certificate` to the handler), `passed` (go on without a certificate) or
 * `refused` (answer with the refusal, before the handler runs).
 */
export type Enforcement = Admission | PassThrough | EnforcedRefusal;

/**
 * passThrough is the `PassThrough` of every open or report-only call.
 */
export const passThrough: PassThrough = Object.freeze({ kind: "passed", certificate: undefined });

/**
 * enforcementOf turns a decision into what the adapter does. A refusal of a
 * report-only policy passes; `procedure` goes into the refusal's detail.
 */
export function enforcementOf(decision: Decision, procedure: string): Enforcement {
  if (decision.kind === "admitted") {
    return decision;
  }
  if (decision.reportOnly === true) {
    return passThrough;
  }
  return refusalOf(decision, procedure);
}

/**
 * refusalOf returns the `EnforcedRefusal` of a refused decision.
 */
export function refusalOf(decision: Exclude<Decision, { kind: "admitted" }>, procedure: string): EnforcedRefusal {
  return {
    kind: "refused",
    status: decision.status,
    code: decision.code,
    message: decision.message,
    detail: { reason: publicReason(decision.reason), procedure },
    cause: decision.kind === "error" ? decision.error : undefined,
    decision,
  };
}
