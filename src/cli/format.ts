import { toJson } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { Certificate as LocalCertificate } from "../core/certificate.js";
import { CertificateSchema, type Certificate as StoredCertificate } from "../gen/certgate/v1/certificate_store_pb.js";
import { displayText } from "../core/display-text.js";
import { oneLine } from "./common.js";

/**
 * formatTime prints a time the way the CLI shows it everywhere:
 * `2026-05-01 12:00:00 UTC`, unambiguous and sortable.
 */
export function formatTime(date: Date | undefined): string {
  if (date === undefined || Number.isNaN(date.getTime())) {
    return "-";
  }
  return `${date.toISOString().slice(0, 19).replace("T", " ")} UTC`;
}

/**
 * validityNote tells whether a validity window is open now, for display
 * next to the expiry: an empty string, ` (expired)` or ` (not yet valid)`.
 */
export function validityNote(notBefore: Date | undefined, notAfter: Date | undefined, now = Date.now()): string {
  if (notAfter !== undefined && now > notAfter.getTime()) {
    return " (expired)";
  }
  if (notBefore !== undefined && now < notBefore.getTime()) {
    return " (not yet valid)";
  }
  return "";
}

/**
 * fields renders label/value rows with the values aligned, indented by two
 * spaces, one row a line.
 */
export function fields(rows: readonly (readonly [string, string])[]): string {
  const width = Math.max(...rows.map(([label]) => label.length)) + 1;
  return rows.map(([label, value]) => `  ${`${label}:`.padEnd(width)} ${value}\n`).join("");
}

/**
 * localCertificateRows describes a certificate read from a file: what
 * `certgate thumbprint` shows.
 */
export function localCertificateRows(certificate: LocalCertificate): [string, string][] {
  return [
    ["Subject", oneLine(certificate.subject)],
    ["Issuer", oneLine(certificate.issuer)],
    ["Expires", `${formatTime(certificate.notAfter)}${validityNote(certificate.notBefore, certificate.notAfter)}`],
    ["SHA-1", certificate.sha1],
    ["SHA-256", certificate.sha256],
  ];
}

/**
 * localCertificateJson is the `--json` form of a certificate read from a
 * file, with the field names of the proto's `Certificate` message.
 */
export function localCertificateJson(certificate: LocalCertificate): Record<string, unknown> {
  return {
    sha1Thumbprint: certificate.sha1,
    sha256Thumbprint: certificate.sha256,
    subject: certificate.subject,
    issuer: certificate.issuer,
    serialNumber: certificate.serialNumber,
    notBefore: certificate.notBefore.toISOString(),
    notAfter: certificate.notAfter.toISOString(),
    isCa: certificate.isCA,
  };
}

/**
 * storedCertificateRows describes a certificate kept by the store: what
 * `certgate get` shows.
 */
export function storedCertificateRows(certificate: StoredCertificate): [string, string][] {
  const notBefore = certificate.notBefore === undefined ? undefined : timestampDate(certificate.notBefore);
  const notAfter = certificate.notAfter === undefined ? undefined : timestampDate(certificate.notAfter);
  const labels = Object.entries(certificate.labels)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([key, value]) => displayText(`${key}=${value}`));
  return [
    ["ID", displayText(certificate.certificateId)],
    ["Subject", oneLine(certificate.subject)],
    ["Issuer", oneLine(certificate.issuer)],
    ["Serial", displayText(certificate.serialNumber)],
    ["Not before", formatTime(notBefore)],
    ["Expires", `${formatTime(notAfter)}${validityNote(notBefore, notAfter)}`],
    ["SHA-1", certificate.sha1Thumbprint],
    ["SHA-256", certificate.sha256Thumbprint],
    ["CA", certificate.isCa ? "yes" : "no"],
    ["Labels", labels.length === 0 ? "-" : labels.join(", ")],
    ["Created", formatTime(certificate.createTime === undefined ? undefined : timestampDate(certificate.createTime))],
  ];
}

/**
 * storedCertificateJson is the `--json` form of a stored certificate: the
 * proto3 JSON mapping of `certgate.v1.Certificate` (DER as base64), so that
 * scripts see the same shape as the service's Connect JSON API.
 */
export function storedCertificateJson(certificate: StoredCertificate, options: { der?: boolean } = {}): unknown {
  const value = toJson(CertificateSchema, certificate) as Record<string, unknown>;
  if (options.der === false) {
    delete value.der;
  }
  return value;
}

/**
 * table renders rows as left-aligned columns separated by two spaces, the
 * last column unpadded.
 */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((row) => (row[i] ?? "").length)));
  return all
    .map((row) =>
      row
        .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
        .join("  ")
        .trimEnd(),
    )
    .map((line) => `${line}\n`)
    .join("");
}

/**
 * pem armours DER bytes as a PEM block with 64-character lines.
 */
export function pem(label: string, der: Uint8Array): string {
  const base64 = Buffer.from(der).toString("base64");
  const lines = base64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}
