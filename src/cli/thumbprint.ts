import {
  passwordFileFlag,
  passwordFileHelp,
  pkcs12Password,
  readCertificateFile,
  type CertificateFile,
} from "./certificate-files.js";
import { CliError, defineCommand, expectPositionals, ExitCode, json } from "./common.js";
import { fields, localCertificateJson, localCertificateRows } from "./format.js";

const help = `Usage: certgate thumbprint FILE... [--json]

Prints the SHA-1 and SHA-256 thumbprints (upper-case hex, the way API
gateway portals and certificate dialogs show them), the subject, the issuer
and the expiry of every certificate in the files. A file may be PEM (one
certificate or a bundle), DER (.cer, .der), a PKCS#7 bundle (.p7b, PEM or
DER) or a PKCS#12 file (.p12, .pfx; its keys are never decrypted). Private keys in a file are
ignored with a note on standard error; they are never printed. A file that
cannot be read is one line on standard error, the others are still printed,
and the exit status is then 1.

Pin a thumbprint with createThumbprintStore(), or pass it to
certgate serve --admin / --reader.

Options:
      --json    Print JSON: {"certificates": [{"file", "index", "sha1Thumbprint",
                "sha256Thumbprint", "subject", "issuer", "serialNumber",
                "notBefore", "notAfter", "isCa"}]}
${passwordFileHelp}
  -h, --help    Show this help

Examples:
  certgate thumbprint client.pem
  certgate thumbprint --json bundle.pem | jq -r '.certificates[].sha1Thumbprint'
`;

/**
 * thumbprintCommand is `certgate thumbprint FILE...`: the thumbprints,
 * subject and expiry of every certificate in the files. Needs no store.
 */
export const thumbprintCommand = defineCommand(
  {
    name: "thumbprint",
    help,
    options: { json: { type: "boolean" }, ...passwordFileFlag },
  },
  async ({ values, positionals }, io) => {
    expectPositionals("thumbprint", positionals, "FILE (a PEM or DER certificate file)", { min: 1 });
    // Like sha256sum, every file that can be read is printed and every one
    // that cannot is one line on standard error; any failure fails the exit
    // status, so the output is never a silent half.
    const passwords = await pkcs12Password(values["password-file"], io);
    const files: CertificateFile[] = [];
    let failed = 0;
    for (const name of positionals) {
      try {
        files.push(await readCertificateFile(name, io.cwd, passwords));
      } catch (error) {
        if (!(error instanceof CliError)) throw error;
        failed++;
        io.stderr(`certgate: ${error.message}\n`);
      }
    }
    const status = failed === 0 ? ExitCode.ok : ExitCode.failure;
    for (const file of files) {
      if (file.privateKeys > 0) {
        const keys = file.privateKeys === 1 ? "a private key" : `${file.privateKeys} private keys`;
        io.stderr(`certgate: note: ${file.name}: ignored ${keys} (never printed)\n`);
      }
      if (file.skipped.length > 0) {
        io.stderr(`certgate: note: ${file.name}: ignored ${file.skipped.join(", ")}\n`);
      }
    }
    if (values.json === true) {
      const certificates = files.flatMap((file) =>
        file.certificates.map((certificate, index) => ({
          file: file.name,
          index,
          ...localCertificateJson(certificate),
        })),
      );
      io.stdout(json({ certificates }));
      return status;
    }
    const blocks: string[] = [];
    for (const file of files) {
      file.certificates.forEach((certificate, index) => {
        const title =
          file.certificates.length === 1
            ? file.name
            : `${file.name} (certificate ${index + 1} of ${file.certificates.length})`;
        blocks.push(`${title}\n${fields(localCertificateRows(certificate))}`);
      });
    }
    io.stdout(blocks.join("\n"));
    return status;
  },
);
