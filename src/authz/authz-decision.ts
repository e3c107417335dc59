// One answer for every proxy protocol: allow with the identity headers, or
// deny with a status and a reason. Forward auth and Envoy's Check both ask it.
import type { PeerCertificate } from "../core/peer-certificate.js";
import type { Enforcement } from "../core/enforcement.js";
import type { DecisionCore } from "../decision/decision.js";
import { identityHeaders, type IdentityHeader } from "./identity-headers.js";

/**
 * AuthzAnswer is what certgate tells a proxy about one request: `allow`
 * (forward it, with `headers` for the upstream) or `deny` (answer the
 * client with `status` and `reason`).
 */
export type AuthzAnswer =
  | { readonly kind: "allow"; readonly headers: readonly IdentityHeader[] }
  | {
      readonly kind: "deny";
      /** 401 for an unauthenticated client, 403 for a forbidden one. */
      readonly status: 401 | 403;
      /** The public reason, such as `expired` or `untrusted_proxy`. */
      readonly reason: string;
      /** A short lowercase message; never lists allowed certificates. */
      readonly message: string;
    };

const allowOpen: AuthzAnswer = Object.freeze({ kind: "allow", headers: Object.freeze([]) });

/**
 * untrustedProxy is the answer to a request from an address that is not a
 * trusted proxy: whatever it says of a certificate is not believed.
 */
export const untrustedProxy: AuthzAnswer = Object.freeze({
  kind: "deny",
  status: 403,
  reason: "untrusted_proxy",
  message: "not a trusted proxy",
});

/**
 * AuthzDecide answers one request, synchronously when the certificate's
 * decision is cached. It never rejects: a failure is a denial.
 */
export type AuthzDecide = (peer: PeerCertificate, procedure: string) => AuthzAnswer | Promise<AuthzAnswer>;

/**
 * createAuthzDecide returns the answer of `core` (the same decision as the
 * interceptors, cached per certificate) in the proxies' terms.
 */
export function createAuthzDecide(core: DecisionCore): AuthzDecide {
  return (peer, procedure) => {
    const result = core.enforce(peer, procedure, "authz");
    return result instanceof Promise ? result.then(answerOf, denyOnFailure) : answerOf(result);
  };
}

function answerOf(enforcement: Enforcement): AuthzAnswer {
  switch (enforcement.kind) {
    case "admitted":
      return { kind: "allow", headers: identityHeaders(enforcement) };
    case "passed":
      // An open procedure, or a report-only refusal: no identity to tell.
      return allowOpen;
    default:
      return {
        kind: "deny",
        status: enforcement.status === "permission_denied" ? 403 : 401,
        reason: enforcement.detail.reason,
        message: enforcement.message,
      };
  }
}

function denyOnFailure(): AuthzAnswer {
  return { kind: "deny", status: 401, reason: "store_unavailable", message: "certificate check failed" };
}
