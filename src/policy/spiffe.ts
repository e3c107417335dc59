/**
 * SpiffeId is a SPIFFE ID split into its parts.
 */
export interface SpiffeId {
  /** The trust domain, such as `example.org`. */
  readonly trustDomain: string;
  /** The path, such as `/ns/prod/sa/api`, or `""` for the trust domain's own ID. */
  readonly path: string;
}

const trustDomain = /^[a-z0-9._-]+$/;
const segment = /^[A-Za-z0-9._-]+$/;

/**
 * parseSpiffeId reads a SPIFFE ID as the SPIFFE ID specification defines it
 * (`spiffe://trust-domain/path`), or returns undefined for anything else:
 * upper-case or empty trust domains, ports, user info, queries, fragments,
 * percent-encoding, empty segments, `.` and `..` segments and trailing
 * slashes are all refused, so that no spelling can step outside a prefix.
 */
export function parseSpiffeId(uri: string): SpiffeId | undefined {
  if (typeof uri !== "string" || uri.length > 2048 || !uri.startsWith("spiffe://")) {
    return undefined;
  }
  const rest = uri.slice("spiffe://".length);
  const slash = rest.indexOf("/");
  const domain = slash < 0 ? rest : rest.slice(0, slash);
  const path = slash < 0 ? "" : rest.slice(slash);
  if (!trustDomain.test(domain)) {
    return undefined;
  }
  if (path !== "") {
    for (const part of path.slice(1).split("/")) {
      if (!segment.test(part) || part === "." || part === "..") {
        return undefined;
      }
    }
  }
  return { trustDomain: domain, path };
}

/**
 * UriPattern matches URI subject alternative names: exactly, or, for a SPIFFE
 * pattern ending in `/*`, every valid SPIFFE ID under that path.
 */
export interface UriPattern {
  /** The pattern as configured. */
  readonly text: string;
  /** Whether one URI matches. */
  matches(uri: string): boolean;
}

/**
 * compileUriPattern turns `spiffe://example.org/*` or
 * `spiffe://example.org/ns/prod/*` into a prefix pattern, and any other URI
 * into an exact one. It throws a `TypeError` naming the pattern for a `*`
 * anywhere else or a prefix that is not a valid SPIFFE ID.
 *
 * A prefix matches only whole path segments of a valid SPIFFE ID:
 * `spiffe://example.org/*` does not match `spiffe://example.org.evil/a`,
 * and `spiffe://example.org/ns/*` does not match `spiffe://example.org/nsx`
 * or `spiffe://example.org/ns/../admin`.
 */
export function compileUriPattern(text: string): UriPattern {
  if (typeof text !== "string" || text.length === 0) {
    throw new TypeError(`invalid uri ${JSON.stringify(text)}: expected a URI`);
  }
  if (!text.includes("*")) {
    return { text, matches: (uri) => uri === text };
  }
  if (!text.endsWith("/*") || text.indexOf("*") !== text.length - 1) {
    throw new TypeError(
      `invalid uri ${JSON.stringify(text)}: a wildcard is only allowed as a SPIFFE prefix ending in "/*"`,
    );
  }
  const base = text.slice(0, -2);
  const parsed = parseSpiffeId(base);
  if (parsed === undefined) {
    throw new TypeError(
      `invalid uri ${JSON.stringify(text)}: a prefix must be a valid SPIFFE ID followed by "/*", such as "spiffe://example.org/*"`,
    );
  }
  const prefix = `${base}/`;
  return {
    text,
    matches(uri) {
      return uri.startsWith(prefix) && parseSpiffeId(uri) !== undefined;
    },
  };
}
