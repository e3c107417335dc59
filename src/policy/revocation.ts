import type { Certificate } from "../core/certificate.js";
import { readCaConstraints } from "./certificate-extensions.js";
import type { CertificateSet } from "./certificate-set.js";
import { verifyCrlSignature, type ParsedCrl } from "./crl.js";
import type { CrlSet } from "./crl-set.js";
import { distinguishedNamesEqual } from "./distinguished-name.js";
import { certificateNamesOf } from "./client-identity.js";

/**
 * RevocationResult is the revocation status of a chain.
 */
export type RevocationResult =
  | {
      readonly kind: "good";
      /** When a CRL or OCSP response used goes stale or is due a refresh (epoch ms): check again then. */
      readonly expiresAt: number;
    }
  | {
      readonly kind: "revoked";
      readonly reason: "revoked";
      readonly why: string;
      /** When to check again (an OCSP answer may change), or undefined: when the sources change. */
      readonly expiresAt?: number;
    }
  | {
      readonly kind: "unknown";
      readonly reason: "crl_unavailable" | "stale_crl" | "ocsp_unavailable";
      readonly why: string;
      /** When to check again (a failed fetch is retried), or undefined: when the sources change. */
      readonly expiresAt?: number;
    };

/**
 * RevocationChecker checks chains against a CRL set, and, with online
 * revocation, OCSP responders and CRL distribution points.
 */
export interface RevocationChecker {
  /** Changes when the CRLs, the CA certificates or an online status change. */
  readonly revision: number;
  /**
   * Checks every certificate of `chain` (leaf first) but the last against
   * the CRL of the certificate above it, at time `t` (epoch ms). A promise
   * only when an online status is not known yet; it never rejects.
   */
  check(chain: readonly Certificate[], t: number): RevocationResult | Promise<RevocationResult>;
}

/**
 * CrlRevocationChecker checks chains against CRLs in memory: it never waits.
 */
export interface CrlRevocationChecker extends RevocationChecker {
  check(chain: readonly Certificate[], t: number): RevocationResult;
}

/**
 * RevocationCheckerOptions configures `createRevocationChecker`.
 */
export interface RevocationCheckerOptions {
  /** Accept a CRL past its nextUpdate. By default, false. */
  allowStale?: boolean;
  /** Treat a certificate whose issuer has no usable CRL as not revoked. By default, false. */
  allowMissing?: boolean;
  /** Clock skew allowed on nextUpdate, ms. By default, 0. */
  clockSkewMs?: number;
  /** Called with each CRL that cannot be used, once per change of the sets. By default, a process warning. */
  onError?: (error: Error) => void;
}

interface Index {
  readonly crlRevision: number;
  readonly caRevision: number;
  /** Verified, usable CRLs by the SHA-256 thumbprint of the CA that signed them. */
  readonly byIssuer: Map<string, ParsedCrl[]>;
}

/**
 * createRevocationChecker returns a `RevocationChecker`. A CRL counts only
 * if a CA certificate of `ca` with the CRL's issuer name, allowed to sign
 * CRLs, verifies its signature; CRLs are matched with their CAs again when
 * either set changes. For each certificate the newest usable CRL of its
 * issuer is used (highest thisUpdate not in the future).
 */
export function createRevocationChecker(
  crls: CrlSet,
  ca: CertificateSet,
  options: RevocationCheckerOptions = {},
): CrlRevocationChecker {
  const allowStale = options.allowStale ?? false;
  const allowMissing = options.allowMissing ?? false;
  const skew = options.clockSkewMs ?? 0;
  const onError =
    options.onError ?? ((error: Error) => process.emitWarning(`certgate: ${error.message}`, { code: "CERTGATE_CRL" }));
  let index: Index | undefined;

  function currentIndex(): Index {
    const crlRevision = crls.revision;
    const caRevision = ca.revision;
    if (index !== undefined && index.crlRevision === crlRevision && index.caRevision === caRevision) return index;
    const byIssuer = new Map<string, ParsedCrl[]>();
    const signers = ca.certificates.filter((c) => {
      try {
        return readCaConstraints(c.der).crlSign;
      } catch {
        return false;
      }
    });
    for (const crl of crls.crls) {
      if (crl.unsupported !== undefined) {
        onError(new Error(`CRL ${crl.source} is not used: ${crl.unsupported}`));
        continue;
      }
      let signer: Certificate | undefined;
      let why = "no CA certificate with its issuer name";
      for (const candidate of signers) {
        if (!distinguishedNamesEqual(certificateNamesOf(candidate).subject, crl.issuer)) continue;
        const check = verifyCrlSignature(crl, candidate.x509);
        if (check.kind === "valid") {
          signer = candidate;
          break;
        }
        why = check.why;
      }
      if (signer === undefined) {
        onError(new Error(`CRL ${crl.source} is not used: its signature does not verify (${why})`));
        continue;
      }
      const list = byIssuer.get(signer.sha256) ?? [];
      list.push(crl);
      byIssuer.set(signer.sha256, list);
    }
    for (const list of byIssuer.values()) list.sort((a, b) => b.thisUpdate.getTime() - a.thisUpdate.getTime());
    index = { crlRevision, caRevision, byIssuer };
    return index;
  }

  return {
    get revision() {
      return crls.revision + ca.revision;
    },
    check(chain, t) {
      const idx = currentIndex();
      let expiresAt = Infinity;
      let problem: RevocationResult | undefined;
      for (let i = 0; i + 1 < chain.length; i++) {
        const certificate = chain[i] as Certificate;
        const issuer = chain[i + 1] as Certificate;
        const crl = idx.byIssuer
          .get(issuer.sha256)
          ?.find(
            (c) =>
              c.thisUpdate.getTime() <= t + skew &&
              !(c.onlyEndEntities && certificate.isCA) &&
              !(c.onlyCAs && !certificate.isCA),
          );
        const which = i === 0 ? "the client certificate" : "an intermediate CA certificate";
        if (crl === undefined) {
          if (!allowMissing)
            problem ??= { kind: "unknown", reason: "crl_unavailable", why: `no usable CRL for ${which}` };
          continue;
        }
        if (crl.revoked.has(certificate.serialNumber)) {
          return { kind: "revoked", reason: "revoked", why: `${which} is revoked (${crl.source})` };
        }
        const next = crl.nextUpdate?.getTime();
        if (next !== undefined && !allowStale) {
          if (t > next + skew) {
            problem ??= {
              kind: "unknown",
              reason: "stale_crl",
              why: `the CRL for ${which} is past its nextUpdate (${crl.source})`,
            };
          } else {
            expiresAt = Math.min(expiresAt, next + skew + 1);
          }
        }
      }
      return problem ?? { kind: "good", expiresAt };
    },
  };
}
