import { inspectDer } from "./der.js";
import type { DirectoryProblemCode } from "./types.js";

/**
 * DecodedFile is what one certificate file holds: its certificates, in
 * order, or why it is skipped.
 */
export type DecodedFile =
  | { readonly kind: "certificates"; readonly ders: readonly Uint8Array[] }
  | { readonly kind: "problem"; readonly code: DirectoryProblemCode; readonly reason: string };

const begin = Buffer.from("-----BEGIN ", "latin1");
const dashes = Buffer.from("-----", "latin1");

function problem(code: DirectoryProblemCode, reason: string): DecodedFile {
  return { kind: "problem", code, reason };
}

// Which bytes may appear between the armour lines: base64 and whitespace.
const base64Byte = new Uint8Array(256);
for (const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") base64Byte[c.charCodeAt(0)] = 1;
for (const c of " \t\r\n") base64Byte[c.charCodeAt(0)] = 2;

// Decoded DER goes here, not into a fresh Buffer per block: loading 100k
// files would otherwise churn ~40 MB of native memory.
let scratch = Buffer.allocUnsafe(64 * 1024);
let used = 0;

// Decodes strict base64 (whitespace allowed anywhere, `=` padding only at
// the end) into `scratch`, or returns undefined: Node's own decoder skips
// junk silently.
function decodeBase64(buffer: Buffer, start: number, end: number): Uint8Array | undefined {
  let count = 0;
  let padding = 0;
  for (let i = start; i < end; i++) {
    const b = buffer[i]!;
    const kind = base64Byte[b];
    if (kind === 1 && padding === 0) count++;
    else if (b === 0x3d) padding++;
    else if (kind !== 2) return undefined;
  }
  if (count === 0 || padding > 2 || (count + padding) % 4 !== 0) return undefined;
  const length = scratch.write(buffer.toString("latin1", start, end), used, "base64");
  const der = new Uint8Array(scratch.buffer, scratch.byteOffset + used, length);
  used += length;
  return der;
}

/**
 * decodeCertificateFile reads the certificates of one file: one DER
 * certificate, or PEM text with one or more `CERTIFICATE` blocks (a bundle)
 * and any explanatory text around them. A file holding a private key,
 * another PEM type, broken base64 or a block that is not one whole
 * certificate is skipped whole, so that what a folder admits never depends on
 * how much of a broken file could be read.
 *
 * The DER returned is a view of `bytes` or of a buffer reused by the next
 * call: copy what you keep.
 */
export function decodeCertificateFile(bytes: Uint8Array): DecodedFile {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (scratch.length < buffer.length) scratch = Buffer.allocUnsafe(buffer.length);
  used = 0;
  if (buffer.length === 0) {
    return problem("not_a_certificate", "empty file");
  }
  let next = buffer.indexOf(begin);
  if (next < 0) {
    if (buffer[0] !== 0x30) return problem("not_a_certificate", "neither PEM nor DER");
    const kind = inspectDer(buffer);
    switch (kind.kind) {
      case "certificate":
        return { kind: "certificates", ders: [bytes] };
      case "private_key":
        return problem("private_key", "holds a private key (DER); private keys are never loaded as trust");
      case "pkcs12":
        return problem("pkcs12", "is a PKCS#12 archive; export the certificate alone as PEM or DER");
      default:
        return problem("not_a_certificate", kind.reason);
    }
  }
  const ders: Uint8Array[] = [];
  const failures: DecodedFile[] = [];
  while (next >= 0) {
    const where = `PEM block ${ders.length + failures.length + 1}`;
    const labelEnd = buffer.indexOf(dashes, next + begin.length);
    const label = labelEnd < 0 ? "" : buffer.toString("latin1", next + begin.length, labelEnd);
    if (labelEnd < 0 || label.length > 64) return problem("not_a_certificate", `${where}: broken BEGIN line`);
    if (label.includes("PRIVATE KEY")) {
      return problem("private_key", "holds a private key; private keys are never loaded as trust");
    }
    const bodyStart = labelEnd + dashes.length;
    const endLine = `-----END ${label}-----`;
    const bodyEnd = buffer.indexOf(endLine, bodyStart, "latin1");
    const following = buffer.indexOf(begin, bodyStart);
    if (bodyEnd < 0 || (following >= 0 && following < bodyEnd)) {
      return problem("not_a_certificate", `${where}: no END line (truncated?)`);
    }
    next = buffer.indexOf(begin, bodyEnd + endLine.length);
    if (label === "PKCS12") {
      failures.push(problem("pkcs12", `${where} is a PKCS#12 archive`));
      continue;
    }
    if (label !== "CERTIFICATE") {
      failures.push(problem("not_a_certificate", `${where} is ${label}, not CERTIFICATE`));
      continue;
    }
    const der = decodeBase64(buffer, bodyStart, bodyEnd);
    if (der === undefined) {
      failures.push(problem("not_a_certificate", `${where} holds broken base64`));
      continue;
    }
    const kind = inspectDer(der);
    if (kind.kind !== "certificate") {
      const reason = kind.kind === "invalid" ? kind.reason : `holds a ${kind.kind.replace("_", " ")}`;
      failures.push(problem(kind.kind === "invalid" ? "not_a_certificate" : kind.kind, `${where}: ${reason}`));
      continue;
    }
    ders.push(der);
  }
  return failures[0] ?? { kind: "certificates", ders };
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

/** The most labels one certificate may carry. */
export const maxLabels = 64;
/** The longest label key, in characters. */
export const maxLabelKeyLength = 128;
/** The longest label value, in characters. */
export const maxLabelValueLength = 1024;

/**
 * checkLabels returns why `labels` cannot be stored, or undefined when they
 * can: a plain object of at most 64 string values, keys of 1 to 128
 * characters, values of at most 1024.
 */
export function checkLabels(labels: unknown): string | undefined {
  if (labels === null || typeof labels !== "object" || Array.isArray(labels)) {
    return "labels must be an object of strings";
  }
  const entries = Object.entries(labels);
  if (entries.length > maxLabels) {
    return `at most ${maxLabels} labels`;
  }
  for (const [key, value] of entries) {
    if (key.length === 0 || key.length > maxLabelKeyLength) {
      return `label keys must be 1 to ${maxLabelKeyLength} characters`;
    }
    if (typeof value !== "string") {
      return `label ${JSON.stringify(key)} must be a string`;
    }
    if (value.length > maxLabelValueLength) {
      return `label ${JSON.stringify(key)} is longer than ${maxLabelValueLength} characters`;
    }
  }
  return undefined;
}

/**
 * encodeStoredFile renders the file that `put` writes: the metadata lines,
 * then the certificate as PEM. Labels are JSON with every `-` escaped, so
 * that no label can spell a PEM armour line and smuggle a second certificate
 * into the file.
 */
export function encodeStoredFile(
  der: Uint8Array,
  createTime: Date,
  labels: Readonly<Record<string, string>>,
): string {
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
