// Decisions as the policy tests look at them: a peer as a new TLS
// connection presents it, and a decision named by its outcome.
import { parseCertificate } from "../../src/core/certificate.js";
import type { Decision } from "../../src/core/decision-report.js";
import type { PeerCertificate } from "../../src/core/peer-certificate.js";

/**
 * peerOf is a new PeerCertificate for `issued` (an issued certificate or a
 * PEM), as a new connection makes one, unverified by TLS.
 */
export function peerOf(issued: { readonly cert: string } | string): PeerCertificate {
  const cert = typeof issued === "string" ? issued : issued.cert;
  return { certificate: parseCertificate(cert), authorized: false, authorizationError: undefined, encrypted: true };
}

/** outcomeOf names a decision: "admitted", or the reason it refuses. */
export const outcomeOf = (d: Decision): string => (d.kind === "admitted" ? "admitted" : d.reason);
