import { normalizeThumbprint } from "../core/thumbprint.js";
import { passwordFileFlag, passwordFileHelp, pkcs12Password, readCertificateFile } from "./certificate-files.js";
import {
  CliError,
  defineCommand,
  errorMessage,
  expectPositionals,
  ExitCode,
  json,
  oneLine,
  usageError,
} from "./common.js";
import { storedCertificateJson } from "./format.js";
import { connectStore, storeErrorReason, storeFlags, storeFlagsHelp } from "./store-client.js";
import { displayText } from "../core/display-text.js";

const help = `Usage: certgate verify FILE [store options]
       certgate verify --thumbprint THUMBPRINT [store options]

Asks the certificate store service whether it admits a certificate, and why
not. FILE is PEM, DER, PKCS#7 or PKCS#12; when it holds a chain, the first certificate (the
leaf, as TLS presents it) is checked; a private key beside it is ignored and
never sent. A thumbprint may be SHA-1 or SHA-256, pasted in any spelling.

Options:
      --thumbprint HEX  Verify by thumbprint instead of a file
${passwordFileHelp}
${storeFlagsHelp}
  -h, --help            Show this help

Exit status: 0 when admitted, 3 when not admitted (the reason is printed:
not_allowed, expired, not_yet_valid, invalid_certificate), 1 when the store
could not answer, 2 for a wrong command line.

Examples:
  certgate verify client.pem
  certgate verify --thumbprint "3a f2 ... 9c"
`;

const reasons: Record<string, string> = {
  not_allowed: "not in the store",
  expired: "the certificate has expired",
  not_yet_valid: "the certificate is not valid yet",
  invalid_certificate: "the certificate could not be read",
};

/**
 * verifyCommand is `certgate verify FILE`: VerifyCertificate, with an exit
 * status that scripts can test.
 */
export const verifyCommand = defineCommand(
  {
    name: "verify",
    help,
    options: { ...storeFlags, thumbprint: { type: "string" }, ...passwordFileFlag },
  },
  async ({ values, positionals }, io) => {
    let subject: { case: "certificate"; value: Uint8Array } | { case: "thumbprint"; value: string };
    let what: string;
    let description = "";
    if (values.thumbprint !== undefined) {
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
