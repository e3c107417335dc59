import { ConnectError } from "@connectrpc/connect";
import { refusalCode, refusalDetail, type Decision } from "../decision-report.js";
import { ClientCertificateErrorSchema } from "../gen/certgate/v1/errors_pb.js";

/**
 * decisionError turns a refusal into the `ConnectError` the client sees:
 * `Code.Unauthenticated` (HTTP 401, grpc-status 16), or
 * `Code.PermissionDenied` (HTTP 403, grpc-status 7) when identities refused
 * a certificate that passed every other check. The reason travels as a
 * `certgate.v1.ClientCertificateError` error detail.
 */
export function decisionError(decision: Exclude<Decision, { kind: "admitted" }>, procedure = ""): ConnectError {
  // A refusal is an expected outcome, not a bug: its stack trace tells
  // nothing, and capturing it in the adapter's deep stack costs microseconds
  // per refused call, which a flood of unauthenticated calls multiplies.
  const stackTraceLimit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return new ConnectError(
      decision.message,
      refusalCode(decision),
      undefined,
      [{ desc: ClientCertificateErrorSchema, value: refusalDetail(decision, procedure) }],
      decision.kind === "error" ? decision.error : undefined,
    );
  } finally {
    Error.stackTraceLimit = stackTraceLimit;
  }
}
