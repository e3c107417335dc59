import { timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";

const day = 86_400_000;

/** dateOf turns a protobuf timestamp into a Date (undefined when unset). */
export function dateOf(ts: Timestamp | undefined): Date | undefined {
  return ts === undefined ? undefined : timestampDate(ts);
}

/** formatDate shows a time as "2026-12-07 21:05 UTC". */
export function formatDate(date: Date | undefined): string {
  if (date === undefined) return "";
  return `${date.toISOString().slice(0, 16).replace("T", " ")} UTC`;
}

/** daysLeft counts whole days until a time; negative once it passed. */
export function daysLeft(date: Date | undefined, now = Date.now()): number | undefined {
  return date === undefined ? undefined : Math.floor((date.getTime() - now) / day);
}

/** daysLeftText says "12 days", "expired 3 days ago". */
export function daysLeftText(days: number | undefined): string {
  if (days === undefined) return "";
  if (days < 0) return `expired ${-days} day${days === -1 ? "" : "s"} ago`;
  return `${days} day${days === 1 ? "" : "s"}`;
}

/** shortThumbprint shows the first and last 8 hex digits. */
export function shortThumbprint(hex: string): string {
  return hex.length <= 20 ? hex : `${hex.slice(0, 8)}…${hex.slice(-8)}`;
}

/**
 * hexOnly keeps the hex digits of a thumbprint in any spelling people paste
 * ("ab:cd", "AB CD", "sha256 Fingerprint=AB:CD"), upper-case.
 */
export function hexOnly(text: string): string {
  const cleaned = text.replace(/^\s*sha-?(1|256)\s*(fingerprint)?\s*=?/i, "");
  return cleaned.replace(/[^0-9a-f]/gi, "").toUpperCase();
}

/** labelsText shows labels as "key=value, key=value". */
export function labelsText(labels: Record<string, string>): string {
  return Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(", ");
}

/** parseLabels reads "key=value, key=value" back. */
export function parseLabels(text: string): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const part of text.split(",")) {
    const trimmed = part.trim();
    if (trimmed === "") continue;
    const eq = trimmed.indexOf("=");
    if (eq <= 0) throw new Error(`label "${trimmed}" is not key=value`);
    labels[trimmed.slice(0, eq).trim()] = trimmed.slice(eq + 1).trim();
  }
  return labels;
}

/** colonHex shows bytes in hex pairs joined by colons, as OpenSSL's -text does. */
export function colonHex(hex: string): string {
  const sign = hex.startsWith("-") ? "-" : "";
  const digits = hex.replace(/^-/, "");
  return sign + (digits.match(/.{1,2}/g) ?? []).join(":").toLowerCase();
}

/**
 * dnText shows a distinguished name as the store gives it (Node's form, one
 * attribute per line) on one line: "CN=device-42, O=Contoso, C=US".
 */
export function dnText(dn: string): string {
  return dn.split("\n").join(", ");
}
