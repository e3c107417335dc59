import { Code, ConnectError } from "@connectrpc/connect";
import { isValidCertificateId } from "../store.js";

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
  if (!text.startsWith(tokenPrefix) || !isValidCertificateId(after) || encodePageToken(after) !== token) {
    throw new ConnectError("invalid page_token", Code.InvalidArgument);
  }
  return after;
}
