import type { CertificateSetInput } from "./certificate-set.js";
import type { CrlSetInput } from "./crl-set.js";
import type { RevocationFetch } from "./online-fetch.js";
import type { OcspMode } from "./online-revocation.js";
import type { CertificateIdentity, IssuerCertificateSource } from "./identity-match.js";

/**
 * TrustOptions makes certgate build and verify the chain itself, against CA
 * certificates given to it.
 */
export interface TrustOptions {
  /**
   * The trusted CA certificates: self-signed roots are trust anchors, the
   * others serve as intermediates (clients need not send them). A
   * `CertificateSet` from `createCertificateFileSet` (files or a folder,
   * reloaded on change) or `createCertificateSetFromStore` (the folder store
   * or the remote store), or PEM / DER / `Certificate`s given once. Required.
   */
  ca: CertificateSetInput;
  /**
   * Let a chain end at any certificate of `ca`, not only a self-signed root,
   * like Node's `allowPartialTrustChain`. By default, false.
   */
  allowPartialChain?: boolean;
}

/**
 * RevocationOptions configures `validateRevocation`: every certificate of
 * the chain but the root is looked up in the CRL of its issuer (CRL files,
 * and with `crlDistributionPoints`, CRLs fetched from the certificates'
 * distribution points), and with `ocsp`, the client certificate's status is
 * asked of its issuer's OCSP responder. Online status is fetched when a
 * certificate is first seen and refreshed in the background; see
 * docs/policy.md.
 */
export interface RevocationOptions {
  /**
   * The CRLs: a `CrlSet` from `createCrlFileSet` (files or a folder,
   * reloaded on change), or PEM / DER CRLs given once. Required, unless
   * `ocsp` or `crlDistributionPoints` is on.
   */
  crls?: CrlSetInput;
  /**
   * Ask the OCSP responder (RFC 6960) of the client certificate's issuer:
   * its Authority Information Access URL, or `responderUrl`. `"soft-fail"`:
   * a `revoked` answer refuses with `revoked`; no usable answer (responder
   * down, slow, bad response, `unknown`) admits. `"hard-fail"`: only a
   * `good` answer admits; anything else refuses with `ocsp_unavailable`.
   * By default, `"off"`.
   */
  ocsp?: OcspMode;
  /**
   * Fetch the CRLs named by the certificates' CRL distribution points
   * (http and https URLs; LDAP is not supported), verify them with the
   * issuer like CRL files, and keep them until their nextUpdate. A
   * certificate whose CRL cannot be fetched is treated like one without a
   * CRL (`crl_unavailable`, unless `allowMissing`). By default, false.
   */
  crlDistributionPoints?: boolean;
  /**
   * The OCSP responder to ask instead of the one the certificate names
   * (an http or https URL). By default, the certificate's AIA responder.
   */
  responderUrl?: string;
  /**
   * The longest a fetch (OCSP or CRL, redirects and body included) may take,
   * and so the longest a request waits for a status not yet known, in
   * milliseconds. By default, 5000.
   */
  fetchTimeoutMs?: number;
  /**
   * The largest OCSP response or CRL accepted, in bytes, enforced while it
   * streams in. By default, 10 MiB.
   */
  maxResponseBytes?: number;
  /**
   * Fetch a status again this long before its nextUpdate, in the
   * background (at the latest halfway through its remaining life), in
   * milliseconds. By default, 10 minutes.
   */
  refreshBeforeMs?: number;
  /**
   * The fetch function for OCSP and CRL requests: for tests, or an outbound
   * proxy (undici's `fetch` with a `ProxyAgent` dispatcher). By default,
   * `globalThis.fetch`.
   */
  fetch?: RevocationFetch;
  /**
   * The CA certificates that issued the certificates and sign the CRLs. By
   * default, `validateTrust.ca`; required when `validateTrust` is not given
   * CA certificates.
   */
  ca?: CertificateSetInput;
  /**
   * Accept a CRL past its nextUpdate instead of refusing with `stale_crl`.
   * By default, false.
   */
  allowStale?: boolean;
  /**
   * Treat a certificate whose issuer has no valid CRL as not revoked instead
   * of refusing with `crl_unavailable`. By default, false.
   */
  allowMissing?: boolean;
  /**
   * Called with each CRL that is not used (bad signature, no issuing CA,
   * delta or indirect CRL), and with an `OnlineRevocationError` for each
   * failed OCSP or CRL fetch (its `reason` says why). By default, a process
   * warning (for failed fetches, at most one a minute per reason).
   */
  onError?: (error: Error) => void;
}

/**
 * RuleOptions are the checks a per-procedure rule may set; what a rule does
 * not set comes from the top-level options.
 */
export interface RuleOptions {
  /** See `PolicyOptions.validateNotBefore`. */
  validateNotBefore?: boolean;
  /** See `PolicyOptions.validateNotAfter`. */
  validateNotAfter?: boolean;
  /** See `PolicyOptions.validateTrust`. */
  validateTrust?: boolean | "tls" | TrustOptions;
  /** See `PolicyOptions.validateRevocation`. */
  validateRevocation?: false | RevocationOptions;
  /** See `PolicyOptions.requireClientAuthUsage`. */
  requireClientAuthUsage?: boolean;
  /** See `PolicyOptions.identities`. */
  identities?: readonly CertificateIdentity[];
  /** See `PolicyOptions.reportOnly`. */
  reportOnly?: boolean;
}

/**
 * ProcedureRule applies its checks to the procedures it names. Rules are
 * tried in order and the first that names the procedure wins; a procedure
 * no rule names gets the top-level options (the default rule).
 */
export interface ProcedureRule extends RuleOptions {
  /**
   * `/pkg.Service/Method`, `/pkg.Service/*` (every method of the service),
   * `*` (every procedure), or a list of these. Required.
   */
  procedure: string | readonly string[];
  /**
   * `"any"` leaves the procedures open: no certificate is needed and none is
   * checked (health checks, reflection). `"authenticated"` admits every
   * certificate that passes the certificate checks, whatever the identities.
   * It cannot be combined with other fields. By default, the rule's checks apply.
   */
  allow?: "any" | "authenticated";
}

/**
 * PolicyOptions is the validation policy, part of `ClientCertOptions`.
 */
export interface PolicyOptions {
  /**
   * Refuse certificates whose validity window has not begun (notBefore).
   * By default, true.
   */
  validateNotBefore?: boolean;
  /**
   * Refuse certificates whose validity window has ended (notAfter), on every
   * call, also on connections opened before the end. By default, true.
   */
  validateNotAfter?: boolean;
  /**
   * Clock skew allowed on validity windows, CRL nextUpdate and OCSP
   * thisUpdate / nextUpdate, in milliseconds. By default, 0.
   */
  clockSkewMs?: number;
  /**
   * Require a chain to a trusted CA. `true` or `"tls"`: as Node's TLS layer
   * verified it against the server's `ca` option (`socket.authorized`; give
   * the server `ca`, or Node's default public roots are used). An object
   * with `ca`: certgate builds and checks the chain itself. Refusal:
   * `untrusted`. By default, false.
   */
  validateTrust?: boolean | "tls" | TrustOptions;
  /**
   * Check revocation: CRLs, OCSP, CRL distribution points (see
   * `RevocationOptions`). Refusals: `revoked`, `crl_unavailable`,
   * `stale_crl`, `ocsp_unavailable`. By default, false.
   */
  validateRevocation?: false | RevocationOptions;
  /**
   * Require the extended key usage to allow TLS client authentication
   * (`clientAuth`, `anyExtendedKeyUsage`, or no such extension). Refusal:
   * `wrong_usage`. By default, false.
   */
  requireClientAuthUsage?: boolean;
  /**
   * Admit a certificate only if it matches every field of at least one
   * identity; a certificate that passes every other check but matches none
   * is refused with `not_allowed` and `Code.PermissionDenied`. By default,
   * no identity check.
   */
  identities?: readonly CertificateIdentity[];
  /**
   * Where `issuerCertificateId` finds CA certificates by id. By default, the
   * store's `get`, if it has one (a `WritableCertificateStore`).
   */
  issuerCertificates?: IssuerCertificateSource;
  /** Per-procedure rules; see `ProcedureRule`. By default, none. */
  rules?: readonly ProcedureRule[];
  /**
   * Decide and report every call through `onDecision` (with `reportOnly:
   * true`) but let refused calls through, like the gateway's ignore-error: a
   * rollout aid. By default, false.
   */
  reportOnly?: boolean;
  /**
   * Flag calls whose certificate expires within this many days with
   * `expiresSoon: true` in `onDecision`. By default, no warning.
   */
  expiryWarningDays?: number;
}
