// The one list of the reasons certgate refuses a call for, with the status
// and the message a client sees. Every server (the interceptor, the gate,
// the store service, the grpc-js adapter) refuses from this list.

/**
 * RefusalStatus is the framework-neutral status of a refusal:
 * `"unauthenticated"` (Connect's `Code.Unauthenticated`, HTTP 401,
 * grpc-status 16) when the client is not known, `"permission_denied"`
 * (`Code.PermissionDenied`, HTTP 403, grpc-status 7) when it is known but not
 * allowed the call.
 */
export type RefusalStatus = "unauthenticated" | "permission_denied";

/**
 * statusCodes gives the numeric code of each status: gRPC's status codes,
 * which Connect's `Code` enum shares.
 */
export const statusCodes = {
  unauthenticated: 16,
  permission_denied: 7,
} as const satisfies Record<RefusalStatus, number>;

/**
 * StatusCode is the numeric code of a refusal: 16 (unauthenticated) or 7
 * (permission denied), equal to Connect's `Code.Unauthenticated` and
 * `Code.PermissionDenied`.
 */
export type StatusCode = (typeof statusCodes)[RefusalStatus];

/**
 * Refusal describes one way certgate refuses: the machine-readable reason the
 * client sees in the `certgate.v1.ClientCertificateError` detail, the status
 * and the message.
 */
export interface Refusal {
  readonly reason: string;
  readonly status: RefusalStatus;
  /** A short lowercase message for the client; never lists allowed certificates. */
  readonly message: string;
}

const unauthenticated = (reason: string, message: string): Refusal => ({ reason, status: "unauthenticated", message });

/**
 * refusals is the list of every refusal certgate makes. `not_allowed` has
 * two entries: a store that does not know the certificate
 * (unauthenticated), and identities that do not admit a certificate which
 * passed every other check (`procedure_not_allowed`, permission denied). A
 * store may refuse with a reason of its own: the client then sees the
 * reason `refused` (it could name other certificates).
 */
export const refusals = {
  no_certificate: unauthenticated("no_certificate", "no client certificate presented"),
  invalid_certificate: unauthenticated("invalid_certificate", "client certificate could not be read"),
  expired: unauthenticated("expired", "client certificate expired"),
  not_yet_valid: unauthenticated("not_yet_valid", "client certificate not yet valid"),
  not_allowed: unauthenticated("not_allowed", "client certificate not allowed"),
  store_unavailable: unauthenticated("store_unavailable", "client certificate could not be checked: store unavailable"),
  untrusted: unauthenticated("untrusted", "client certificate not trusted"),
  revoked: unauthenticated("revoked", "client certificate revoked"),
  crl_unavailable: unauthenticated(
    "crl_unavailable",
    "client certificate could not be checked: revocation list unavailable",
  ),
  stale_crl: unauthenticated("stale_crl", "client certificate could not be checked: revocation list out of date"),
  ocsp_unavailable: unauthenticated(
    "ocsp_unavailable",
    "client certificate could not be checked: revocation status unavailable",
  ),
  wrong_usage: unauthenticated("wrong_usage", "client certificate not issued for client authentication"),
  procedure_not_allowed: {
    reason: "not_allowed",
    status: "permission_denied",
    message: "client certificate not allowed to call this procedure",
  },
  // The certificate store service (`createCertificateStoreService`'s access).
  untrusted_chain: unauthenticated("untrusted_chain", "client certificate not issued by a trusted ca"),
  permission_denied: {
    reason: "permission_denied",
    status: "permission_denied",
    message: "client certificate not allowed to call this procedure",
  },
  // A call that changes the store from a web page of another origin: the
  // browser presents the admin's certificate to any page that asks.
  foreign_origin: {
    reason: "foreign_origin",
    status: "permission_denied",
    message: "changes are accepted only from the console's own origin",
  },
} as const satisfies Record<string, Refusal>;

/**
 * PublicRefusalReason is a reason a client may see in a refusal's detail.
 */
export type PublicRefusalReason = (typeof refusals)[keyof typeof refusals]["reason"];

// Maps, not object literals: a store's reason such as "constructor" must not
// find Object.prototype's members.
const byReason: ReadonlyMap<string, Refusal> = new Map(
  Object.values(refusals)
    // `procedure_not_allowed` shares its reason with `not_allowed`.
    .filter((r) => r.status === "unauthenticated" || r.reason !== "not_allowed")
    .map((r) => [r.reason, r]),
);

/**
 * refusalMessage returns the client-facing message for a reason; a reason
 * not on the list (a store's own) gets "client certificate refused".
 */
export function refusalMessage(reason: string): string {
  return byReason.get(reason)?.message ?? "client certificate refused";
}

/**
 * publicReason returns the reason a client sees: the reason itself when it
 * is on the list, else `refused`.
 */
export function publicReason(reason: string): string {
  return byReason.has(reason) ? reason : "refused";
}
