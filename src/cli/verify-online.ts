// `certgate verify --online`: the certificate's revocation status asked of
// its issuer, OCSP and CRL distribution points, through the same decision
// core the servers use.
import type { Certificate } from "../core/certificate.js";
import { createDecisionCore } from "../decision/decision.js";
import { crlDistributionPointsOf } from "../policy/crl-distribution-points.js";
import { ocspUrlsOf } from "../policy/ocsp-request.js";
import { CliError, ExitCode } from "./common.js";

/**
 * OnlineVerdict is what `verifyOnline` found.
 */
export interface OnlineVerdict {
  readonly admitted: boolean;
  /** The refusal reason (`revoked`, `ocsp_unavailable`, ...), or "" when admitted. */
  readonly reason: string;
  /** What was asked: `ocsp URL`, `crl URL`. */
  readonly sources: readonly string[];
  /** Why each online source gave nothing usable, for notes. */
  readonly problems: readonly string[];
}

/**
 * verifyOnline checks `leaf`, issued by one of `issuers`, against the OCSP
 * responder (its AIA one, or `responderUrl`) with hard-fail, and the CRLs
 * of its distribution points. It throws a `CliError` when the certificate
 * names neither.
 */
export async function verifyOnline(
  what: string,
  leaf: Certificate,
  issuers: readonly Certificate[],
  responderUrl: string | undefined,
  timeoutMs: number,
): Promise<OnlineVerdict> {
  const ocsp = responderUrl === undefined ? ocspUrlsOf(leaf) : [responderUrl];
  const crls = crlDistributionPointsOf(leaf);
  if (ocsp.length === 0 && crls.length === 0) {
    throw new CliError(
      `verify ${what}: --online: the certificate names no OCSP responder and no http CRL distribution point; give --responder URL`,
    );
  }
  const problems: string[] = [];
  let core: ReturnType<typeof createDecisionCore>;
  try {
    core = createDecisionCore({
      validateTrust: { ca: [...issuers], allowPartialChain: true },
      validateRevocation: {
        ocsp: ocsp.length > 0 ? "hard-fail" : "off",
        crlDistributionPoints: crls.length > 0,
        ...(responderUrl !== undefined && { responderUrl }),
        fetchTimeoutMs: timeoutMs,
        onError: (error) => problems.push(error.message),
      },
    });
  } catch (error) {
    throw new CliError(
      `verify ${what}: --online: ${(error as Error).message.replace(/^certgate: /, "")}`,
      ExitCode.usage,
    );
  }
  const decision = await core.decide({
    certificate: leaf,
    authorized: false,
    authorizationError: undefined,
    encrypted: true,
  });
  return {
    admitted: decision.kind === "admitted",
    reason: decision.kind === "admitted" ? "" : decision.kind === "refused" ? decision.reason : "error",
    sources: [...ocsp.slice(0, 1).map((u) => `ocsp ${u}`), ...crls.slice(0, 1).map((u) => `crl ${u}`)],
    problems,
  };
}
