import { timestampDate } from "@bufbuild/protobuf/wkt";
import { readCertificateFile } from "./certificate-files.js";
import { displayText } from "../core/display-text.js";
import { CliError, defineCommand, expectPositionals, ExitCode, json, oneLine, usageError } from "./common.js";
import { formatTime, storedCertificateJson } from "./format.js";
import { connectStore, storeErrorReason, storeFlags, storeFlagsHelp } from "./store-client.js";

const help = `Usage: certgate upload FILE... [--id ID] [--label KEY=VALUE]... [store options]

Uploads client certificates to the certificate store service; every API
server that uses the store admits them from then on. Each file must hold
exactly one certificate (PEM or DER) and no private key: certgate never
sends private keys. Every file is checked before anything is sent.

Options:
      --id ID               Store the certificate under this id (one FILE only):
                            letters, digits, ".", "_" and "-". By default, the
                            store uses its SHA-256 thumbprint.
      --label KEY=VALUE     A label to keep with each certificate (repeatable)
${storeFlagsHelp}
  -h, --help                Show this help

Examples:
  certgate upload client.pem --id alice --label team=payments \\
    --store https://localhost:8444 --cert admin.pem --key admin-key.pem --ca ca.pem
  CERTGATE_STORE=https://localhost:8444 certgate upload *.pem

Exit status: 0 when every file was uploaded, 1 when any failed (one line per
failure on standard error), 2 for a wrong command line.
`;

/**
 * uploadCommand is `certgate upload FILE...`: CreateCertificate for each
 * file.
 */
export const uploadCommand = defineCommand(
  {
    name: "upload",
    help,
    options: {
      ...storeFlags,
      id: { type: "string" },
      label: { type: "string", multiple: true },
    },
  },
  async ({ values, positionals }, io) => {
    expectPositionals("upload", positionals, "FILE (a certificate to upload)", { min: 1 });
    if (values.id !== undefined && positionals.length > 1) {
      throw usageError("upload", "--id names one certificate, but more than one FILE was given");
    }
    const labels = parseLabels(values.label ?? []);
    const files = [];
    for (const name of positionals) {
      const file = await readCertificateFile(name, io.cwd).catch((error: unknown) => {
        throw error instanceof CliError
          ? new CliError(`upload ${error.message}`, error.exitCode, { cause: error })
          : error;
      });
      if (file.privateKeys > 0) {
        throw new CliError(
          `upload ${name}: the file holds a private key; upload the certificate alone (certgate never sends private keys)`,
        );
      }
      if (file.certificates.length !== 1) {
        throw new CliError(
          `upload ${name}: the file holds ${file.certificates.length} certificates; upload one certificate per file`,
        );
      }
      files.push({ name, certificate: file.certificates[0]! });
    }
    const store = await connectStore("upload", values, io);
    const uploaded: unknown[] = [];
    let failed = 0;
    for (const { name, certificate } of files) {
      try {
        const response = await store.client.createCertificate(
          { certificate: certificate.der, certificateId: values.id ?? "", labels },
          store.callOptions,
        );
        const stored = response.certificate;
        if (stored === undefined) {
          throw new CliError("the store answered without the stored certificate");
        }
        if (values.json === true) {
          uploaded.push({ file: name, ...(storedCertificateJson(stored, { der: false }) as object) });
        } else {
          const notAfter = stored.notAfter === undefined ? undefined : timestampDate(stored.notAfter);
          io.stdout(
            `uploaded ${name} as ${displayText(stored.certificateId)} (${oneLine(stored.subject)}, expires ${formatTime(notAfter)})\n`,
          );
        }
      } catch (error) {
        failed++;
        const reason =
          error instanceof CliError
            ? error.message
            : storeErrorReason(error, store.url, values.id ?? certificate.sha256);
        io.stderr(`certgate: upload ${name}: ${reason}\n`);
      }
    }
    if (values.json === true) {
      io.stdout(json({ certificates: uploaded }));
    }
    return failed === 0 ? ExitCode.ok : ExitCode.failure;
  },
);

/**
 * parseLabels reads `--label KEY=VALUE` flags.
 */
export function parseLabels(flags: readonly string[]): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const flag of flags) {
    const eq = flag.indexOf("=");
    if (eq <= 0) {
      throw usageError("upload", `--label ${flag}: expected KEY=VALUE`);
    }
    const key = flag.slice(0, eq);
    if (Object.hasOwn(labels, key)) {
      throw usageError("upload", `--label ${key} given twice`);
    }
    labels[key] = flag.slice(eq + 1);
  }
  return labels;
}
