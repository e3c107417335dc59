import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { Certificate } from "../core/certificate.js";
import { displayText } from "../core/display-text.js";
import {
  passwordFileFlag,
  passwordFileHelp,
  pkcs12Password,
  readCertificateFile,
  type CertificateFile,
} from "./certificate-files.js";
import {
  CliError,
  defineCommand,
  expectPositionals,
  ExitCode,
  json,
  oneLine,
  usageError,
  type CliIo,
} from "./common.js";
import { formatTime, storedCertificateJson } from "./format.js";
import { connectStore, storeErrorReason, storeFlags, storeFlagsHelp, type StoreConnection } from "./store-client.js";

const help = `Usage: certgate upload FILE... [--id ID] [--label KEY=VALUE]... [store options]

Uploads client certificates to the certificate store service; every API
server that uses the store admits them from then on. Each file must hold
exactly one certificate (PEM or DER) and no private key: certgate never
sends private keys. A PKCS#12 file (.p12, .pfx) or PKCS#7 bundle (.p7b,
PEM or DER) may hold a chain: its end-entity certificates are uploaded and
its CA certificates left out; a PKCS#12 file's keys are never decrypted.
Every file is checked before anything is sent. A certificate the store
already holds under another id, and an expired or not yet valid one, are
uploaded with a note on standard error.

Options:
      --id ID               Store the certificate under this id (one FILE only):
                            letters, digits, ".", "_" and "-". By default, the
                            store uses its SHA-256 thumbprint.
      --label KEY=VALUE     A label to keep with each certificate (repeatable)
${passwordFileHelp}
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
      ...passwordFileFlag,
    },
  },
  async ({ values, positionals }, io) => {
    expectPositionals("upload", positionals, "FILE (a certificate to upload)", { min: 1 });
    if (values.id !== undefined && positionals.length > 1) {
      throw usageError("upload", "--id names one certificate, but more than one FILE was given");
    }
    const labels = parseLabels(values.label ?? []);
    const passwords = await pkcs12Password(values["password-file"], io);
    const files: { name: string; certificate: Certificate }[] = [];
    for (const name of positionals) {
      const file = await readCertificateFile(name, io.cwd, passwords).catch((error: unknown) => {
        throw error instanceof CliError
          ? new CliError(`upload ${error.message}`, error.exitCode, { cause: error })
          : error;
      });
      if (file.privateKeys > 0) {
        throw new CliError(
          `upload ${name}: the file holds a private key; upload the certificate alone (certgate never sends private keys)`,
        );
      }
      files.push(...chooseCertificates(file, io));
    }
    if (values.id !== undefined && files.length > 1) {
      throw usageError("upload", `--id names one certificate, but ${positionals[0]} holds ${files.length}`);
    }
    const now = Date.now();
    for (const { name, certificate } of files) {
      if (certificate.notAfter.getTime() < now) {
        io.stderr(
          `certgate: note: ${name}: expired on ${formatTime(certificate.notAfter)}; uploaded anyway, but API servers refuse an expired certificate\n`,
        );
      } else if (certificate.notBefore.getTime() > now) {
        io.stderr(
          `certgate: note: ${name}: not valid until ${formatTime(certificate.notBefore)}; uploaded anyway, and refused until then\n`,
        );
      }
    }
    const store = await connectStore("upload", values, io);
    const uploaded: unknown[] = [];
    let failed = 0;
    for (const { name, certificate } of files) {
      try {
        const id = values.id ?? certificate.sha256;
        const earlier = await storedAs(store, certificate.sha256);
        const response = await store.client.createCertificate(
          { certificate: certificate.der, certificateId: values.id ?? "", labels },
          store.callOptions,
        );
        const stored = response.certificate;
        if (stored === undefined) {
          throw new CliError("the store answered without the stored certificate");
        }
        if (earlier !== undefined && earlier !== id) {
          io.stderr(
            `certgate: note: ${name}: the same certificate is already stored as ${displayText(earlier)}; it stays admitted until both ids are deleted\n`,
          );
        }
        if (values.json === true) {
          uploaded.push({
            file: name,
            ...(storedCertificateJson(stored, { der: false }) as object),
            ...(earlier !== undefined && earlier !== id ? { alsoStoredAs: earlier } : {}),
          });
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
 * chooseCertificates picks what to upload from one file: its one
 * certificate; out of a PKCS#12 file or PKCS#7 bundle, its end-entity
 * certificates, leaving the chain's CA certificates out with a note (a CA
 * certificate in the store would be trusted as an issuer).
 */
function chooseCertificates(file: CertificateFile, io: CliIo): { name: string; certificate: Certificate }[] {
  const { name, certificates } = file;
  for (const skipped of file.skipped) io.stderr(`certgate: note: ${name}: ignored ${skipped}\n`);
  if (file.container === undefined) {
    if (certificates.length !== 1) {
      throw new CliError(
        `upload ${name}: the file holds ${certificates.length} certificates; upload one certificate per file`,
      );
    }
    return [{ name, certificate: certificates[0]! }];
  }
  const leaves = certificates.filter((c) => !c.isCA);
  const cas = certificates.length - leaves.length;
  if (leaves.length === 0) {
    throw new CliError(
      `upload ${name}: the file holds only CA certificates; to trust a CA, upload it as a PEM or DER file of its own`,
    );
  }
  if (cas > 0) {
    io.stderr(
      `certgate: note: ${name}: left out ${cas === 1 ? "1 CA certificate" : `${cas} CA certificates`} of the chain\n`,
    );
  }
  return leaves.map((certificate, i) => ({
    name: leaves.length === 1 ? name : `${name} (certificate ${i + 1} of ${leaves.length})`,
    certificate,
  }));
}

/**
 * storedAs returns the id the store already admits a certificate under, by
 * its SHA-256 thumbprint, or undefined when it holds none or cannot say
 * (the upload itself then reports any store problem).
 */
async function storedAs(store: StoreConnection, sha256: string): Promise<string | undefined> {
  try {
    const answer = await store.client.verifyCertificate(
      { subject: { case: "thumbprint", value: sha256 } },
      store.callOptions,
    );
    const id = answer.certificate?.certificateId;
    return id === undefined || id === "" ? undefined : id;
  } catch {
    return undefined;
  }
}

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
