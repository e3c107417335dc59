import { Code, ConnectError } from "@connectrpc/connect";
import type { Decision } from "../core/decision-report.js";
import { refusalOf, type EnforcedRefusal } from "../core/enforcement.js";
import type { RefusalStatus } from "../core/refusal-reasons.js";
import { ClientCertificateErrorSchema } from "../gen/certgate/v1/errors_pb.js";

const codes: Readonly<Record<RefusalStatus, Code>> = {
  unauthenticated: Code.Unauthenticated,
  permission_denied: Code.PermissionDenied,
};

/**
 * refusalError turns a refusal of the decision core into the `ConnectError`
 * the client sees: `Code.Unauthenticated` (HTTP 401, grpc-status 16), or
 * `Code.PermissionDenied` (HTTP 403, grpc-status 7) for a known client not
 * allowed the call. The reason travels as a `certgate.v1.ClientCertificateError`
 * error detail; a store error is kept as the cause, never sent.
 */
export function refusalError(refusal: EnforcedRefusal): ConnectError {
  // A refusal is an expected outcome, not a bug: its stack trace tells
  // nothing, and capturing it in the adapter's deep stack costs microseconds
  // per refused call, which a flood of unauthenticated calls multiplies.
  const stackTraceLimit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return new ConnectError(
      refusal.message,
      codes[refusal.status],
      undefined,
      [
        {
          desc: ClientCertificateErrorSchema,
          value: { reason: refusal.detail.reason, procedure: refusal.detail.procedure },
        },
      ],
      refusal.cause,
    );
  } finally {
    Error.stackTraceLimit = stackTraceLimit;
  }
}

/**
 * decisionError is `refusalError` of a refused decision, with the procedure
 * for the detail.
 */
export function decisionError(decision: Exclude<Decision, { kind: "admitted" }>, procedure = ""): ConnectError {
  return refusalError(refusalOf(decision, procedure));
}
