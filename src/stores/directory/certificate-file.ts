import { checkLabels } from "../../core/labels.js";
import { decodePemOrDer } from "../../core/pem-der.js";
import type { DirectoryProblemCode } from "./types.js";

/**
 * DecodedFile is what one certificate file holds: its certificates, in
 * order, or why it is skipped.
 */
export type DecodedFile =
  | { readonly kind: "certificates"; readonly ders: readonly Uint8Array[] }
  | { readonly kind: "problem"; readonly code: DirectoryProblemCode; readonly reason: string };

const begin = Buffer.from("-----BEGIN ", "latin1");

function problem(code: DirectoryProblemCode, reason: string): DecodedFile {
  return { kind: "problem", code, reason };
}

/**
 * decodeCertificateFile reads the certificates of one file: one DER
 * certificate, or PEM text with one or more `CERTIFICATE` blocks (a bundle)
 * and any explanatory text around them, with certgate's one PEM/DER reader
 * (`decodePemOrDer`). A file holding a private key, another PEM type,
 * broken base64 or a block that is not one whole certificate is skipped
 * whole, so that what a folder admits never depends on how much of a broken
 * file could be read.
 */
export function decodeCertificateFile(bytes: Uint8Array, options: { transient?: boolean } = {}): DecodedFile {
  const decoded = decodePemOrDer(bytes, options);
  if (decoded.kind === "decoded") {
    const [first] = decoded.ders;
    if (!decoded.pem && decoded.ders.length > 1 && first !== undefined) {
      return problem("not_a_certificate", `not DER: ${bytes.length - first.length} bytes after the certificate`);
    }
    return { kind: "certificates", ders: decoded.ders };
  }
  const where = decoded.block === undefined ? "" : `PEM block ${decoded.block}: `;
  switch (decoded.code) {
    case "empty":
      return problem("not_a_certificate", "empty file");
    case "private_key":
      return problem("private_key", `${where}holds a private key; private keys are never loaded as trust`);
    case "pkcs12":
      return problem("pkcs12", `${where}is a PKCS#12 archive; export the certificate alone as PEM or DER`);
    default:
      return problem("not_a_certificate", `${where}${decoded.reason}`);
  }
}

/**
 * FileMetadata is what the store keeps beside a certificate: written by
 * `put` as explanatory text before the PEM armour (RFC 7468 lets PEM files
 * carry text there; other tools skip it).
 */
export interface FileMetadata {
  /** When `put` stored it; undefined for files that did not come from `put`. */
  readonly createTime: Date | undefined;
  /** The labels given to `put`; empty for other files. */
  readonly labels: Readonly<Record<string, string>>;
}

const createTimeField = "certgate-create-time: ";
const labelsField = "certgate-labels: ";

/**
 * readMetadata reads the `certgate-create-time:` and `certgate-labels:` lines
 * that precede the first PEM block. Anything malformed reads as absent.
 */
export function readMetadata(bytes: Uint8Array): FileMetadata {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const head = buffer.indexOf(begin);
  if (head <= 0) {
    return { createTime: undefined, labels: {} };
  }
  let createTime: Date | undefined;
  let labels: Record<string, string> = {};
  for (const line of buffer.subarray(0, head).toString("utf8").split(/\r?\n/)) {
    if (line.startsWith(createTimeField)) {
      const time = new Date(line.slice(createTimeField.length).trim());
      createTime = Number.isNaN(time.getTime()) ? undefined : time;
    } else if (line.startsWith(labelsField)) {
      try {
        const parsed: unknown = JSON.parse(line.slice(labelsField.length));
        if (checkLabels(parsed) === undefined) {
          labels = parsed as Record<string, string>;
        }
      } catch {
        // Unreadable labels read as none: they never decide admission.
      }
    }
  }
  return { createTime, labels };
}

/**
 * encodeStoredFile renders the file that `put` writes: the metadata lines,
 * then the certificate as PEM. Labels are JSON with every `-` escaped, so
 * that no label can spell a PEM armour line and smuggle a second certificate
 * into the file.
 */
export function encodeStoredFile(der: Uint8Array, createTime: Date, labels: Readonly<Record<string, string>>): string {
  const base64 = Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString("base64");
  const lines = base64.match(/.{1,64}/g) ?? [];
  const json = JSON.stringify(labels).replace(/-/g, "\\u002d");
  return [
    `${createTimeField}${createTime.toISOString()}`,
    `${labelsField}${json}`,
    "-----BEGIN CERTIFICATE-----",
    ...lines,
    "-----END CERTIFICATE-----",
    "",
  ].join("\n");
}
