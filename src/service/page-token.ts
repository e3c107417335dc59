import { Code, ConnectError } from "@connectrpc/connect";
import { isValidCertificateId } from "../core/store.js";

/**
 * isValidEntryId tells whether `id` may name a stored entry: a certificate id
 * (see `isValidCertificateId`), or one followed by `#n` (n from 2), which the
 * folder store gives the n-th certificate of a bundle file.
 */
export function isValidEntryId(id: string): boolean {
  const hash = id.lastIndexOf("#");
  if (hash < 0) {
    return isValidCertificateId(id);
  }
  return isValidCertificateId(id.slice(0, hash)) && /^(?:[2-9]|[1-9][0-9]{1,5})$/.test(id.slice(hash + 1));
}

// Versioned, so that the format can change without misreading old tokens.
const tokenPrefix = "c1:";

/**
 * encodePageToken makes the opaque next_page_token of a page that ended at
 * `after`.
 */
export function encodePageToken(after: string): string {
  return Buffer.from(tokenPrefix + after, "utf8").toString("base64url");
}

/**
 * decodePageToken reads a page_token back into the id the page ends after;
 * anything that is not a token made by `encodePageToken` is `InvalidArgument`.
 */
export function decodePageToken(token: string): string {
  const text = Buffer.from(token, "base64url").toString("utf8");
  const after = text.slice(tokenPrefix.length);
  if (!text.startsWith(tokenPrefix) || !isValidEntryId(after) || encodePageToken(after) !== token) {
    throw new ConnectError("invalid page_token", Code.InvalidArgument);
  }
  return after;
}
