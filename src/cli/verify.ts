import type { Certificate } from "../core/certificate.js";
import { normalizeThumbprint } from "../core/thumbprint.js";
import { passwordFileFlag, passwordFileHelp, pkcs12Password, readCertificateFile } from "./certificate-files.js";
import {
  CliError,
  type CliIo,
  defineCommand,
  errorMessage,
  expectPositionals,
  ExitCode,
  json,
  oneLine,
  usageError,
} from "./common.js";
import { storedCertificateJson } from "./format.js";
import { displayText } from "../core/display-text.js";
import { connectStore, storeErrorReason, storeFlags, storeFlagsHelp, type StoreFlagValues } from "./store-client.js";
import { verifyOnline } from "./verify-online.js";

const help = `Usage: certgate verify FILE [--online [--issuer FILE] [--responder URL]] [store options]
       certgate verify --thumbprint THUMBPRINT [store options]

Asks the certificate store service whether it admits a certificate, and why
not. FILE is PEM, DER, PKCS#7 or PKCS#12; when it holds a chain, the first certificate (the
leaf, as TLS presents it) is checked; a private key beside it is ignored and
never sent. A thumbprint may be SHA-1 or SHA-256, pasted in any spelling.

With --online, also asks the certificate's issuer whether it is revoked:
its OCSP responder (hard-fail) and the CRLs of its distribution points
(http only), verified with the issuer certificate. Without a store
(--store, CERTGATE_STORE), only the online check is made.

Options:
      --thumbprint HEX  Verify by thumbprint instead of a file
      --online          Check revocation with the issuer (OCSP, CRL
                        distribution points)
      --issuer FILE     The issuing CA certificate (PEM). By default, the
                        certificates after the first in FILE
      --responder URL   Ask this OCSP responder instead of the one the
                        certificate names
${passwordFileHelp}
${storeFlagsHelp}
  -h, --help            Show this help

Exit status: 0 when admitted, 3 when not admitted (the reason is printed:
not_allowed, expired, not_yet_valid, invalid_certificate, revoked,
untrusted), 1 when the store or the issuer could not answer
(ocsp_unavailable, crl_unavailable, stale_crl), 2 for a wrong command line.

Examples:
  certgate verify client.pem
  certgate verify --thumbprint "3a f2 ... 9c"
  certgate verify --online --issuer ca.pem client.pem
`;

const reasons: Record<string, string> = {
  not_allowed: "not in the store",
  expired: "the certificate has expired",
  not_yet_valid: "the certificate is not valid yet",
  invalid_certificate: "the certificate could not be read",
  revoked: "the issuer revoked it",
  untrusted: "not issued by the given issuer",
  ocsp_unavailable: "no usable OCSP answer",
  crl_unavailable: "no usable CRL",
  stale_crl: "the CRL is out of date",
};

// Online refusals that say the issuer could not be asked, not that it refused.
const couldNotCheck = new Set(["ocsp_unavailable", "crl_unavailable", "stale_crl", "error"]);

/**
 * verifyCommand is `certgate verify FILE`: VerifyCertificate, with an exit
 * status that scripts can test.
 */
export const verifyCommand = defineCommand(
  {
    name: "verify",
    help,
    options: {
      ...storeFlags,
      thumbprint: { type: "string" },
      online: { type: "boolean" },
      issuer: { type: "string" },
      responder: { type: "string" },
      ...passwordFileFlag,
    },
  },
  async ({ values, positionals }, io) => {
    let subject: { case: "certificate"; value: Uint8Array } | { case: "thumbprint"; value: string };
    let what: string;
    let description = "";
    let chain: readonly Certificate[] = [];
    if (values.online !== true && (values.issuer !== undefined || values.responder !== undefined)) {
      throw usageError("verify", "--issuer and --responder go with --online");
    }
    if (values.thumbprint !== undefined) {
      if (values.online === true) throw usageError("verify", "--online needs FILE, not --thumbprint");
      expectPositionals("verify", positionals, "", { min: 0, max: 0 });
      try {
        subject = { case: "thumbprint", value: normalizeThumbprint(values.thumbprint) };
      } catch (error) {
        throw usageError("verify", `--thumbprint: ${errorMessage(error).replace(/^invalid thumbprint /, "")}`);
      }
      what = subject.value;
    } else {
      expectPositionals("verify", positionals, "FILE (or --thumbprint)", { min: 1, max: 1 });
      what = positionals[0]!;
      const file = await readCertificateFile(what, io.cwd, await pkcs12Password(values["password-file"], io)).catch(
        (error: unknown) => {
          throw error instanceof CliError
            ? new CliError(`verify ${error.message}`, error.exitCode, { cause: error })
            : error;
        },
      );
      // Out of a PKCS#12 file or PKCS#7 bundle, the first end-entity certificate.
      const leaf =
        (file.container === undefined ? undefined : file.certificates.find((c) => !c.isCA)) ?? file.certificates[0]!;
      if (file.privateKeys > 0) {
        io.stderr(`certgate: note: ${what}: ignored the private key (never sent)\n`);
      }
      if (file.certificates.length > 1) {
        const which = file.container === undefined ? "the first" : "the end-entity certificate";
        io.stderr(
          `certgate: note: ${what}: verifying ${which} of ${file.certificates.length} certificates (the leaf)\n`,
        );
      }
      subject = { case: "certificate", value: leaf.der };
      description = ` (${oneLine(leaf.subject)})`;
      chain = file.certificates;
    }
    if (values.online === true) {
      const online = await checkOnline(what, chain, values, io);
      if (online !== undefined) return online;
    }
    const store = await connectStore("verify", values, io);
    let answer;
    try {
      answer = await store.client.verifyCertificate({ subject }, store.callOptions);
    } catch (error) {
      throw new CliError(`verify ${what}: ${storeErrorReason(error, store.url)}`, undefined, { cause: error });
    }
    if (values.json === true) {
      io.stdout(
        json({
          admitted: answer.admitted,
          reason: answer.reason,
          revision: answer.revision.toString(),
          ...(answer.certificate === undefined
            ? {}
            : { certificate: storedCertificateJson(answer.certificate, { der: false }) }),
        }),
      );
    } else if (answer.admitted) {
      const id = answer.certificate?.certificateId;
      io.stdout(
        `admitted: ${what}${description}${id === undefined ? "" : ` by stored certificate ${displayText(id)}`}\n`,
      );
    } else {
      const reason = answer.reason === "" ? "refused" : displayText(answer.reason);
      const words = reasons[reason];
      io.stderr(`certgate: verify ${what}: not admitted: ${reason}${words === undefined ? "" : ` (${words})`}\n`);
    }
    return answer.admitted ? ExitCode.ok : ExitCode.notAdmitted;
  },
);

// The online check of `--online`: an exit status when it refuses, or when
// there is no store to ask next; undefined to go on to the store.
async function checkOnline(
  what: string,
  chain: readonly Certificate[],
  values: StoreFlagValues & { issuer?: string; responder?: string },
  io: CliIo,
): Promise<number | undefined> {
  const leaf = chain[0] as Certificate;
  let issuers: readonly Certificate[] = chain.slice(1);
  if (values.issuer !== undefined) {
    issuers = (await readCertificateFile(values.issuer, io.cwd)).certificates;
  }
  if (issuers.length === 0) {
    throw usageError(
      "verify",
      "--online needs the issuer: put it after the certificate in FILE, or give --issuer FILE",
    );
  }
  let timeoutMs = 10_000;
  if (values.timeout !== undefined && Number(values.timeout) > 0) timeoutMs = Math.round(Number(values.timeout) * 1000);
  const verdict = await verifyOnline(what, leaf, issuers, values.responder, timeoutMs);
  for (const problem of verdict.problems) io.stderr(`certgate: note: ${what}: ${problem}\n`);
  const hasStore = (values.store ?? io.env.CERTGATE_STORE ?? "") !== "";
  if (values.json === true && (!verdict.admitted || !hasStore)) {
    io.stdout(json({ admitted: verdict.admitted, reason: verdict.reason, online: verdict.sources }));
  } else if (verdict.admitted) {
    io.stdout(`not revoked: ${what} (${verdict.sources.join(", ")})\n`);
  } else {
    const words = reasons[verdict.reason];
    io.stderr(`certgate: verify ${what}: not admitted: ${verdict.reason}${words === undefined ? "" : ` (${words})`}\n`);
  }
  if (!verdict.admitted) return couldNotCheck.has(verdict.reason) ? ExitCode.failure : ExitCode.notAdmitted;
  return hasStore ? undefined : ExitCode.ok;
}
