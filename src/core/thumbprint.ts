import * as crypto from "node:crypto";
import { createHash } from "node:crypto";
import type { Certificate } from "./certificate.js";

/**
 * ThumbprintAlgorithm names the two hashes that thumbprints are made with.
 */
export type ThumbprintAlgorithm = "sha1" | "sha256";

// Characters that people paste along with a thumbprint: separators and the
// invisible marks that Windows certificate dialogs copy (LRM, RLM, BOM, ZWSP,
// NBSP).
const pasteNoise = /[\s:\u200b\u200e\u200f\ufeff\u00a0]/g;
const hex = /^[0-9A-F]+$/;

/**
 * normalizeThumbprint turns a thumbprint as people paste it into 40 (SHA-1) or
 * 64 (SHA-256) upper-case hex digits: case, colons, spaces and the invisible
 * characters that Windows certificate dialogs copy are dropped.
 *
 * It throws a `TypeError` that names the value for anything else, so that a
 * typo fails at start-up instead of becoming a silent deny-all.
 *
 * @example
 * normalizeThumbprint("\u200eab:cd:...:ef"); // "ABCD...EF"
 */
export function normalizeThumbprint(text: string): string {
  if (typeof text !== "string") {
    throw new TypeError(`invalid thumbprint ${String(text)}: not a string`);
  }
  const normalized = text.replace(pasteNoise, "").toUpperCase();
  if (normalized.length === 0) {
    throw new TypeError(`invalid thumbprint ${quote(text)}: empty`);
  }
  if (text.includes("-----BEGIN")) {
    throw new TypeError(`invalid thumbprint ${quote(text)}: this is PEM text, not a thumbprint (40 or 64 hex digits)`);
  }
  if (!hex.test(normalized)) {
    throw new TypeError(`invalid thumbprint ${quote(text)}: expected hex digits (SHA-1: 40, SHA-256: 64)`);
  }
  if (normalized.length !== 40 && normalized.length !== 64) {
    throw new TypeError(
      `invalid thumbprint ${quote(text)}: ${normalized.length} hex digits, expected 40 (SHA-1) or 64 (SHA-256)`,
    );
  }
  return normalized;
}

// Quotes a value for an error message; long values (a PEM pasted by mistake)
// are cut so that the message stays readable.
function quote(text: string): string {
  const max = 120;
  return JSON.stringify(text.length > max ? `${text.slice(0, max)}…` : text);
}

/**
 * thumbprintAlgorithm tells which hash a normalized thumbprint was made with.
 */
export function thumbprintAlgorithm(normalized: string): ThumbprintAlgorithm {
  return normalized.length === 40 ? "sha1" : "sha256";
}

/**
 * thumbprintsEqual compares two normalized thumbprints in constant time
 * (for thumbprints of the same length).
 */
export function thumbprintsEqual(a: string, b: string): boolean {
  if (a.length !== b.length) {
    return false;
  }
  // Every character is compared, whatever differs: no early exit, and no
  // buffers to allocate (stores compare on every new connection).
  let difference = 0;
  for (let i = 0; i < a.length; i++) {
    difference |= a.charCodeAt(i) ^ b.charCodeAt(i);
  }
  return difference === 0;
}

/**
 * certificateThumbprint returns the thumbprint of the given algorithm.
 */
export function certificateThumbprint(certificate: Certificate, algorithm: ThumbprintAlgorithm): string {
  return algorithm === "sha1" ? certificate.sha1 : certificate.sha256;
}

/**
 * thumbprintsOfDer hashes a DER certificate without parsing it: the cheap
 * path for indexing many files (about 5 µs per certificate).
 */
export function thumbprintsOfDer(der: Uint8Array): { sha1: string; sha256: string } {
  return { sha1: digest("sha1", der), sha256: digest("sha256", der) };
}

// crypto.hash (Node 20.12 and later) hashes in one call, without a Hash
// object: about half the cost of createHash for a certificate.
const oneShot = (crypto as unknown as { hash?: (algorithm: string, data: Uint8Array, encoding: "hex") => string }).hash;

/**
 * digest hashes a DER certificate with a thumbprint's algorithm: upper-case
 * hex, the form thumbprints take.
 */
export function digest(algorithm: ThumbprintAlgorithm, der: Uint8Array): string {
  const hex = oneShot !== undefined ? oneShot(algorithm, der, "hex") : createHash(algorithm).update(der).digest("hex");
  return hex.toUpperCase();
}
