// Reads a TLS certificate, key and CA as one set and says whether it may be
// loaded: every file whole, the key the certificate's, the CA certificates.
import { createPrivateKey, X509Certificate } from "node:crypto";
import { readFile } from "node:fs/promises";
import { createSecureContext } from "node:tls";
import { readPemBlocks } from "./pem-blocks.js";

/**
 * TlsFileContents are the PEM texts of one set, as `secureContextOptions()`
 * returns them (and as Node's `tls.createSecureContext` takes them).
 */
export interface TlsFileContents {
  /** The certificate chain, leaf first. */
  readonly cert: string;
  /** The private key of the leaf. */
  readonly key: string;
  /** The CA certificate(s); absent when no `ca` file was given. */
  readonly ca?: string;
}

/**
 * TlsCertificateInfo describes the leaf certificate of a loaded set.
 */
export interface TlsCertificateInfo {
  /** The end of its validity. */
  readonly notAfter: Date;
  /** Its serial number, upper-case hex as Node prints it. */
  readonly serialNumber: string;
  /** Its SHA-256 fingerprint, colon-separated upper-case hex as Node prints it. */
  readonly fingerprint256: string;
  /** Its subject, as Node prints it. */
  readonly subject: string;
}

/**
 * TlsFileSetCheck is the verdict on one read of the files: `ok` to load;
 * `incomplete` when a file is missing, empty, half written or unreadable
 * (worth retrying: a writer may be in the middle of it); `mismatch` when
 * whole files do not form a set (the key is not the certificate's).
 */
export type TlsFileSetCheck =
  | { readonly kind: "ok"; readonly contents: TlsFileContents; readonly certificate: TlsCertificateInfo }
  | { readonly kind: "incomplete" | "mismatch"; readonly reason: string };

/** TlsFilePaths are the files of a set. */
export interface TlsFilePaths {
  readonly cert: string;
  readonly key: string;
  readonly ca?: string | undefined;
}

/**
 * readTlsFileSet reads the files of a set and checks them together.
 */
export async function readTlsFileSet(paths: TlsFilePaths): Promise<TlsFileSetCheck> {
  let texts: [string, string, string | undefined];
  try {
    texts = await Promise.all([
      readFile(paths.cert, "utf8"),
      readFile(paths.key, "utf8"),
      paths.ca === undefined ? undefined : readFile(paths.ca, "utf8"),
    ]);
  } catch (error) {
    const e = error as NodeJS.ErrnoException;
    return { kind: "incomplete", reason: `cannot read ${e.path ?? "a file"}: ${e.code ?? e.message}` };
  }
  const [cert, key, ca] = texts;
  return checkTlsFileSet({ cert, key, ...(ca === undefined ? {} : { ca }) }, paths);
}

/**
 * checkTlsFileSet checks PEM texts as a set: whole certificates, a private
 * key that belongs to the first certificate, whole CA certificates, and
 * what Node's TLS layer says of them together.
 */
export function checkTlsFileSet(contents: TlsFileContents, paths: TlsFilePaths): TlsFileSetCheck {
  const chain = certificatesOf(contents.cert, paths.cert);
  if (!Array.isArray(chain)) return chain;
  if (paths.ca !== undefined) {
    const cas = certificatesOf(contents.ca ?? "", paths.ca);
    if (!Array.isArray(cas)) return cas;
    // A key beside the CA certificates is a mix-up of files, never trust.
    if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(contents.ca ?? "")) {
      return { kind: "mismatch", reason: `${paths.ca} holds a private key; give only CA certificates` };
    }
  }
  let privateKey;
  try {
    privateKey = createPrivateKey(contents.key);
  } catch (error) {
    return { kind: "incomplete", reason: `${paths.key} holds no readable private key (${(error as Error).message})` };
  }
  const leaf = chain[0]!;
  if (!leaf.checkPrivateKey(privateKey)) {
    return { kind: "mismatch", reason: `the key in ${paths.key} does not belong to the certificate in ${paths.cert}` };
  }
  try {
    createSecureContext(contents);
  } catch (error) {
    return { kind: "mismatch", reason: `Node's TLS layer refuses the set: ${(error as Error).message}` };
  }
  return {
    kind: "ok",
    contents,
    certificate: {
      notAfter: new Date(leaf.validTo),
      serialNumber: leaf.serialNumber,
      fingerprint256: leaf.fingerprint256,
      subject: leaf.subject,
    },
  };
}

// The whole CERTIFICATE blocks of a PEM text; a problem when there is none,
// or when a block is cut short or does not parse (a file being written).
function certificatesOf(text: string, path: string): X509Certificate[] | TlsFileSetCheck {
  const blocks = readPemBlocks(text);
  const begun = text.split("-----BEGIN ").length - 1;
  if (begun !== blocks.length || blocks.some((b) => b.der === undefined)) {
    return { kind: "incomplete", reason: `${path} holds a PEM block that is cut short or broken` };
  }
  const certificates: X509Certificate[] = [];
  for (const block of blocks) {
    if (block.label !== "CERTIFICATE") continue;
    try {
      certificates.push(new X509Certificate(block.der!));
    } catch {
      return { kind: "incomplete", reason: `${path} holds a CERTIFICATE that cannot be read` };
    }
  }
  if (certificates.length === 0) {
    return { kind: "incomplete", reason: `${path} holds no PEM CERTIFICATE` };
  }
  return certificates;
}
