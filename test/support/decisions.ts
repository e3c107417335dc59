// Decisions as the policy tests look at them: a peer as a new TLS
// connection presents it, a decision named by its outcome, and a decision
// core that checks revocation.
import { parseCertificate } from "../../src/core/certificate.js";
import type { Decision } from "../../src/core/decision-report.js";
import type { PeerCertificate } from "../../src/core/peer-certificate.js";
import { createDecisionCore, type ClientCertOptions, type DecisionCore } from "../../src/decision/decision.js";
import type { OnlineRevocationError } from "../../src/policy/online-revocation.js";
import type { RevocationOptions } from "../../src/policy/policy-options.js";

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

/** A decision core that checks revocation, and the errors it reported. */
export interface RevocationCore {
  readonly core: DecisionCore;
  /** The errors `validateRevocation.onError` got, in order. */
  readonly errors: Error[];
  /** The reasons of `errors` (see `OnlineRevocationError`). */
  reasons(): string[];
}

/**
 * revocationCore is a decision core trusting `ca` (PEM) that checks
 * revocation with `revocation`, and `extra` options.
 */
export function revocationCore(
  ca: string,
  revocation: Omit<RevocationOptions, "crls">,
  extra: Partial<ClientCertOptions> = {},
): RevocationCore {
  const errors: Error[] = [];
  const core = createDecisionCore({
    validateTrust: { ca: [ca] },
    validateRevocation: { onError: (e) => errors.push(e), ...revocation },
    ...extra,
  });
  return { core, errors, reasons: () => errors.map((e) => (e as OnlineRevocationError).reason) };
}
