import { readFile, stat } from "node:fs/promises";
import { resolve } from "node:path";
import { parseCertificate, type Certificate } from "../core/certificate.js";
import { inspectDer } from "../core/der.js";
import { readPemBlocks } from "../core/pem-blocks.js";
import { decodePemOrDer } from "../core/pem-der.js";
import { readPkcs7Certificates } from "../core/pkcs7-certificates.js";
import { CliError, errorMessage, type CliIo } from "./common.js";

/**
 * CertificateFile is what one file given on the command line holds.
 */
export interface CertificateFile {
  /** The path as the user wrote it, for messages. */
  readonly name: string;
  /** The certificates, in file order. */
  readonly certificates: readonly Certificate[];
  /** How many private keys the file holds; they are never used or sent. */
  readonly privateKeys: number;
  /** Other PEM blocks that were skipped, by label (such as `CERTIFICATE REQUEST`). */
  readonly skipped: readonly string[];
  /**
   * The archive the certificates were read out of: a PKCS#12 file (whose
   * private keys are left encrypted and counted in `skipped`, not
   * `privateKeys`) or a PKCS#7 bundle. Undefined for PEM and DER.
   */
  readonly container?: "pkcs12" | "pkcs7";
}

/**
 * ReadCertificateFileOptions says how to open a PKCS#12 file.
 */
export interface ReadCertificateFileOptions {
  /** The password of PKCS#12 files. By default, an empty one is tried, then `askPassword`. */
  readonly password?: string;
  /**
   * Asks for the password of the PKCS#12 file `name`, or resolves undefined
   * when nobody can be asked. By default, nobody can.
   */
  readonly askPassword?: (name: string) => Promise<string | undefined>;
}

// Certificate files are a few kilobytes; a bundle of every public CA is under
// one megabyte. A bigger file is a mistake, not something to read into memory.
const maxFileBytes = 16 * 1024 * 1024;

/**
 * readCertificateFile reads every certificate of a PEM file (one or many
 * certificates, maybe with private keys beside them) or of a DER file. It
 * throws a `CliError` naming the file for a file that cannot be read, holds
 * no certificate, or holds a block that is broken: a half-read bundle would
 * show the user a wrong picture.
 */
export async function readCertificateFile(
  name: string,
  cwd: string,
  options: ReadCertificateFileOptions = {},
): Promise<CertificateFile> {
  const path = resolve(cwd, name);
  let bytes: Buffer;
  try {
    const info = await stat(path);
    if (info.isDirectory()) {
      throw new CliError(`${name}: is a folder, not a certificate file`);
    }
    if (info.size > maxFileBytes) {
      throw new CliError(`${name}: ${info.size} bytes is too large for a certificate file`);
    }
    bytes = await readFile(path);
  } catch (error) {
    if (error instanceof CliError) {
      throw error;
    }
    throw new CliError(`${name}: ${fileErrorMessage(error)}`, undefined, { cause: error });
  }
  return (await readArchive(name, bytes, options)) ?? parseCertificateBytes(name, bytes);
}

/**
 * passwordFileFlag is the `--password-file` flag of the commands that read
 * certificate files, for `parseArgs`; `passwordFileHelp` is its help text.
 */
export const passwordFileFlag = { "password-file": { type: "string" } } as const;

/** passwordFileHelp is the help text of `passwordFileFlag`. */
export const passwordFileHelp = `      --password-file FILE  The password of PKCS#12 files (its first line).
                            By default, an empty password is tried, then
                            asked for on the terminal.`;

/**
 * pkcs12Password returns the `ReadCertificateFileOptions` of the
 * command line: the first line of `--password-file`, or asking on the
 * terminal.
 */
export async function pkcs12Password(passwordFile: string | undefined, io: CliIo): Promise<ReadCertificateFileOptions> {
  const askPassword = async (name: string) => io.readSecret?.(`Password of ${name}: `);
  if (passwordFile === undefined) return { askPassword };
  const text = await readTextFile("--password-file", passwordFile, io.cwd);
  return { password: text.split(/\r?\n/)[0] ?? "", askPassword };
}

/**
 * readArchive reads the certificates out of a PKCS#7 bundle (PEM `PKCS7` or
 * DER) or a PKCS#12 file, or returns undefined for anything else.
 */
async function readArchive(
  name: string,
  bytes: Uint8Array,
  options: ReadCertificateFileOptions,
): Promise<CertificateFile | undefined> {
  if (bytes[0] !== 0x30) {
    // PEM: a .p7b exported as text holds PKCS7 blocks and no CERTIFICATE.
    const blocks = readPemBlocks(Buffer.from(bytes).toString("latin1"));
    const bundles = blocks.filter((b) => b.label === "PKCS7" || b.label === "CMS");
    if (bundles.length === 0 || blocks.some((b) => b.label === "CERTIFICATE")) return undefined;
    const ders: Uint8Array[] = [];
    for (const block of bundles) {
      if (block.der === undefined) throw new CliError(`${name}: PEM block ${block.label} has broken base64`);
      ders.push(...pkcs7Ders(name, block.der));
    }
    return archiveFile(name, ders, "pkcs7", []);
  }
  const pkcs7 = readPkcs7Certificates(bytes);
  if (pkcs7.kind !== "not_pkcs7") return archiveFile(name, pkcs7Ders(name, bytes), "pkcs7", []);
  const lower = name.toLowerCase();
  if (!lower.endsWith(".p12") && !lower.endsWith(".pfx") && inspectDer(bytes).kind !== "pkcs12") return undefined;
  // Loaded only for a PKCS#12 file: pkijs is large.
  const { readPkcs12Certificates } = await import("../core/pkcs12-certificates.js");
  // Many tools export with an empty password; try it before asking.
  let read = await readPkcs12Certificates(bytes, options.password ?? "");
  if (read.kind === "problem" && read.code === "wrong_password" && options.password === undefined) {
    const password = await options.askPassword?.(name);
    if (password === undefined) {
      throw new CliError(
        `${name}: a PKCS#12 file needs its password: give --password-file FILE, or run in a terminal to be asked`,
      );
    }
    read = await readPkcs12Certificates(bytes, password);
  }
  if (read.kind === "problem") throw new CliError(`${name}: ${read.reason}`);
  const keys = read.privateKeys;
  const skipped = keys === 0 ? [] : [`${keys === 1 ? "a private key" : `${keys} private keys`} (never decrypted)`];
  return archiveFile(name, read.ders, "pkcs12", skipped);
}

function pkcs7Ders(name: string, bytes: Uint8Array): readonly Uint8Array[] {
  const read = readPkcs7Certificates(bytes);
  if (read.kind === "not_pkcs7") throw new CliError(`${name}: the PKCS7 block is not a PKCS#7 signedData bundle`);
  if (read.kind === "problem") throw new CliError(`${name}: ${read.reason}`);
  return read.ders;
}

function archiveFile(
  name: string,
  ders: readonly Uint8Array[],
  container: "pkcs12" | "pkcs7",
  skipped: string[],
): CertificateFile {
  const what = container === "pkcs12" ? "PKCS#12 file" : "PKCS#7 bundle";
  const certificates = ders.map((der, i) => {
    try {
      return parseCertificate(der);
    } catch (error) {
      throw new CliError(
        `${name}: certificate ${i + 1} of the ${what} is not a certificate: ${errorMessage(error)}`,
        undefined,
        {
          cause: error,
        },
      );
    }
  });
  if (certificates.length === 0) throw new CliError(`${name}: no certificate found in the ${what}`);
  return { name, certificates, privateKeys: 0, skipped, container };
}

/**
 * parseCertificateBytes is `readCertificateFile` for bytes already read.
 */
export function parseCertificateBytes(name: string, bytes: Uint8Array): CertificateFile {
  // Private keys beside the certificate are counted, never used or sent;
  // other blocks (such as a CERTIFICATE REQUEST) are skipped.
  const decoded = decodePemOrDer(bytes, { privateKeys: "count", otherBlocks: "skip", inspect: false });
  if (decoded.kind === "problem") {
    const block = decoded.block === undefined ? "" : ` PEM block ${decoded.block} (${decoded.label ?? "?"})`;
    switch (decoded.code) {
      case "empty":
        throw new CliError(`${name}: empty file, no certificate`);
      case "not_pem_or_der":
      case "invalid":
        // OpenSSL's message ("PEM routines::no start line") would only confuse.
        throw new CliError(`${name}: not a certificate (neither PEM nor DER)`);
      case "broken_base64":
        throw new CliError(`${name}:${block} has broken base64`);
      default:
        throw new CliError(`${name}:${block} ${decoded.reason}`);
    }
  }
  if (!decoded.pem && decoded.ders.length !== 1) {
    throw new CliError(`${name}: not a certificate (neither PEM nor DER)`);
  }
  const certificates: Certificate[] = [];
  for (const [i, der] of decoded.ders.entries()) {
    try {
      certificates.push(parseCertificate(der));
    } catch (error) {
      if (!decoded.pem) {
        throw new CliError(`${name}: not a certificate (neither PEM nor DER)`, undefined, { cause: error });
      }
      throw new CliError(`${name}: certificate ${i + 1} is not a certificate: ${errorMessage(error)}`, undefined, {
        cause: error,
      });
    }
  }
  const { privateKeys, skipped } = decoded;
  if (certificates.length === 0) {
    const found = privateKeys > 0 ? " (only a private key)" : skipped.length > 0 ? ` (only ${skipped.join(", ")})` : "";
    throw new CliError(`${name}: no certificate found${found}`);
  }
  return { name, certificates, privateKeys, skipped };
}

/**
 * readTextFile reads a small PEM file given by a flag (a key, a CA bundle),
 * throwing a `CliError` that names the flag and the file.
 */
export async function readTextFile(flag: string, name: string, cwd: string): Promise<string> {
  try {
    return await readFile(resolve(cwd, name), "utf8");
  } catch (error) {
    throw new CliError(`${flag} ${name}: ${fileErrorMessage(error)}`, undefined, { cause: error });
  }
}

/**
 * fileErrorMessage turns a Node file system error into a short reason.
 */
export function fileErrorMessage(error: unknown): string {
  const code = (error as { code?: unknown } | undefined)?.code;
  switch (code) {
    case "ENOENT":
      return "no such file";
    case "EACCES":
    case "EPERM":
      return "permission denied";
    case "EISDIR":
      return "is a folder, not a file";
    default:
      return errorMessage(error);
  }
}

/**
 * tlsConfigReason turns Node's complaint about TLS files (PEM that is not
 * PEM, a key that does not match) into a short reason.
 */
export function tlsConfigReason(error: unknown): string {
  if ((error as { code?: unknown }).code === "ERR_OSSL_X509_KEY_VALUES_MISMATCH") {
    return "the key does not belong to the certificate";
  }
  if ((error as { code?: unknown }).code === "ERR_OSSL_UNSUPPORTED") {
    return "the key is not a PEM private key that Node can read";
  }
  // OpenSSL's messages start with "error:05800074:x509 certificate
  // routines::"; the part after it is what people can act on.
  const reason = errorMessage(error).replace(/^error:[0-9A-Fa-f]+:[^:]*::/, "");
  return reason === "no start line" ? "not PEM (no -----BEGIN line)" : reason;
}
