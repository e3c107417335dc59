import { normalizeThumbprint } from "../core/thumbprint.js";
import { createAddressMatcher, type AddressMatcher } from "./cidr.js";

/**
 * TrustedProxies says which peers may forward a client certificate in a
 * header. A peer is a trusted proxy when its own TLS client certificate
 * matches one of `thumbprints`, or its address lies in one of `cidrs` (either
 * is enough). At least one must be given.
 */
export interface TrustedProxies {
  /**
   * Thumbprints of the client certificates the proxies present on their own
   * connections to this server, SHA-1 or SHA-256, as pasted (see
   * `normalizeThumbprint`). They also let an XFCC header pass through several
   * proxies: an element naming one of these certificates is a hop, not the
   * client. By default, none.
   */
  thumbprints?: string[];
  /**
   * Address ranges the proxies connect from: IPv4 or IPv6 CIDR (`10.0.0.0/8`,
   * `fd00::/8`) or single addresses (`127.0.0.1`). IPv4 ranges also match
   * IPv4-mapped IPv6 peers (`::ffff:10.1.2.3`) and the other way round.
   * Ranges of prefix 0 are refused: see `anyAddress`. By default, none.
   */
  cidrs?: string[];
  /**
   * Trust every peer whatever its address (Unix socket peers, which have
   * none, included), for platforms where only the proxy can reach the server
   * (an App Service container, a port only the sidecar can reach). Anyone
   * who can connect directly can then forge the header. By default, false.
   */
  anyAddress?: boolean;
}

/**
 * TrustedProxyCheck answers whether a peer is a trusted proxy.
 */
export interface TrustedProxyCheck {
  /** Whether the peer address lies in a trusted range. */
  byAddress(address: string | undefined): boolean;
  /** Whether a certificate with these thumbprints is a trusted proxy's. */
  byThumbprint(thumbprints: { sha1?: string; sha256: string }): boolean;
  /** Whether any thumbprint is trusted (else there is no point in reading the proxy's certificate). */
  readonly hasThumbprints: boolean;
}

/**
 * createTrustedProxyCheck validates `trustedProxies` and returns the check.
 * It throws a `TypeError` naming the problem for a malformed thumbprint or
 * CIDR, or for a configuration that trusts nobody.
 */
export function createTrustedProxyCheck(trusted: TrustedProxies): TrustedProxyCheck {
  if (trusted === null || typeof trusted !== "object") {
    throw new TypeError("certgate: trustedProxies is required: { thumbprints?, cidrs? }");
  }
  const thumbprints = list(trusted.thumbprints, "thumbprints");
  const cidrs = list(trusted.cidrs, "cidrs");
  const anyAddress = trusted.anyAddress === true;
  if (thumbprints.length === 0 && cidrs.length === 0 && !anyAddress) {
    throw new TypeError(
      "certgate: trustedProxies names no proxy; give the proxies' certificate thumbprints or address ranges (cidrs)",
    );
  }
  const pinned = new Set<string>();
  for (const text of thumbprints) {
    try {
      pinned.add(normalizeThumbprint(text));
    } catch (error) {
      throw new TypeError(`certgate: trustedProxies.thumbprints: ${(error as Error).message}`);
    }
  }
  let matcher: AddressMatcher;
  try {
    matcher = createAddressMatcher(cidrs);
  } catch (error) {
    throw new TypeError(`certgate: trustedProxies.cidrs: ${(error as Error).message}`);
  }
  return {
    byAddress: anyAddress ? () => true : matcher,
    byThumbprint: (t) => pinned.has(t.sha256) || (t.sha1 !== undefined && pinned.has(t.sha1)),
    hasThumbprints: pinned.size > 0,
  };
}

function list(value: unknown, name: string): string[] {
  if (value === undefined) {
    return [];
  }
  if (!Array.isArray(value) || value.some((v) => typeof v !== "string")) {
    throw new TypeError(`certgate: trustedProxies.${name} must be an array of strings`);
  }
  return value as string[];
}
