import { readCertificateFile, type CertificateFile } from "./certificate-files.js";
import { defineCommand, expectPositionals, ExitCode, json } from "./common.js";
import { fields, localCertificateJson, localCertificateRows } from "./format.js";

const help = `Usage: certgate thumbprint FILE... [--json]

Prints the SHA-1 and SHA-256 thumbprints (upper-case hex, the way API
gateway portals and certificate dialogs show them), the subject, the issuer
and the expiry of every certificate in the files. A file may be PEM (one
certificate or a bundle) or DER (.cer, .der). Private keys in a file are
ignored with a note on standard error; they are never printed.

Pin a thumbprint with createThumbprintStore(), or pass it to
certgate serve --admin / --reader.

Options:
      --json    Print JSON: {"certificates": [{"file", "index", "sha1Thumbprint",
                "sha256Thumbprint", "subject", "issuer", "serialNumber",
                "notBefore", "notAfter", "isCa"}]}
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
    options: { json: { type: "boolean" } },
  },
  async ({ values, positionals }, io) => {
    expectPositionals("thumbprint", positionals, "FILE (a PEM or DER certificate file)", { min: 1 });
    // Read every file first: a bad file fails the command before anything is
    // printed, so output is never a silent half.
    const files: CertificateFile[] = [];
    for (const name of positionals) {
      files.push(await readCertificateFile(name, io.cwd));
    }
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
      return ExitCode.ok;
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
    return ExitCode.ok;
  },
);
