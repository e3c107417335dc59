// Which certificate a request carries when proxies may forward it in a
// header: framework-neutral; `createPeerCertificateContextValues` (Connect)
// and other adapters put the result where their decision reads it.
import type { Http2Session, ServerHttp2Stream } from "node:http2";
import type { TLSSocket } from "node:tls";
import {
  nodeRequestOf,
  peerCertificateOf,
  type NodeRequestLike,
  type PeerCertificate,
} from "../core/peer-certificate.js";
import { warnOnce } from "../core/warn-once.js";
import { readForwardedCertificate, type ForwardingFormat } from "./forwarding-formats.js";
import {
  configuredHeaders,
  presentHeaders,
  type ForwardingHeader,
  type HeadersLike,
  type PresentHeader,
} from "./forwarding-headers.js";
import { createLruCache, type LruCache } from "../core/lru-cache.js";
import { createTrustedProxyCheck, type TrustedProxies } from "./trusted-proxies.js";
import { positiveInteger } from "../core/options.js";

/**
 * PeerCertificateContextValuesOptions configures
 * `createPeerCertificateContextValues`.
 */
export interface PeerCertificateContextValuesOptions {
  /** Which peers may forward a client certificate in a header. Required. */
  trustedProxies: TrustedProxies;
  /**
   * The forwarding formats to read from trusted proxies, such as `["xfcc"]`.
   * Required, with no default: name exactly what your proxy sends, since a
   * header your proxy does not overwrite is a header clients can forge.
   */
  formats: readonly ForwardingFormat[];
  /**
   * The header your nginx sets to `$ssl_client_escaped_cert`, such as
   * `x-ssl-client-cert`. Required with the `nginx` format, and only then;
   * there is no default, so that it cannot silently differ from the name in
   * the nginx configuration.
   */
  nginxHeader?: string;
  /**
   * The header your proxy sets to the client certificate's base64 DER (Caddy's
   * `{http.request.tls.client.certificate_der_base64}`, Traefik's
   * `X-Forwarded-Tls-Client-Cert`). Required with the `der-base64` format,
   * and only then; no default, like `nginxHeader`.
   */
  derBase64Header?: string;
  /**
   * The longest forwarding header value read, in characters; a longer one is
   * refused unread. By default, 16384 (a leaf and a chain of a few RSA
   * certificates).
   */
  maxHeaderLength?: number;
  /** The most elements an XFCC header may have. By default, 16. */
  maxXfccElements?: number;
  /**
   * How many distinct forwarded header values to keep parsed, per format, so
   * that a returning client costs a map look-up instead of a parse. By
   * default, 1024.
   */
  cacheSize?: number;
}

/**
 * ForwardingRequestLike is the part of a Node HTTP/1.1 or HTTP/2 server
 * request that `createPeerCertificateContextValues` reads. `rawHeaders` is how
 * a header sent twice is told from one value with a comma (Node joins the
 * two); without it, only headers Node gives as arrays count as doubled.
 */
export interface ForwardingRequestLike extends NodeRequestLike, HeadersLike {}

/**
 * ForwardedPeerReader returns the `PeerCertificate` of one request, following
 * the rule of `createPeerCertificateContextValues`. It never throws.
 */
export type ForwardedPeerReader = (req: ForwardingRequestLike) => PeerCertificate;

interface Connection {
  readonly proxy: boolean;
  /** The connection's own peer, for peers that are not proxies. */
  readonly direct: PeerCertificate;
}

interface Header extends ForwardingHeader {
  /** Peers by header value. */
  readonly cache: LruCache<string, PeerCertificate>;
}

/**
 * createForwardedPeerReader returns the reader behind
 * `createPeerCertificateContextValues` (see there for the rule and the
 * options); it throws a `TypeError` naming the problem for a bad option.
 */
export function createForwardedPeerReader(options: PeerCertificateContextValuesOptions): ForwardedPeerReader {
  if (options === null || typeof options !== "object") {
    throw new TypeError("certgate: createPeerCertificateContextValues() needs options: { trustedProxies, formats }");
  }
  const trust = createTrustedProxyCheck(options.trustedProxies);
  const maxHeaderLength = positiveInteger("certgate: maxHeaderLength", options.maxHeaderLength, 16384);
  const maxXfccElements = positiveInteger("certgate: maxXfccElements", options.maxXfccElements, 16);
  const cacheSize = positiveInteger("certgate: cacheSize", options.cacheSize, 1024, 0);
  const headers: Header[] = configuredHeaders(options.formats, options.nginxHeader, options.derBase64Header).map(
    (h) => ({
      ...h,
      cache: createLruCache(cacheSize),
    }),
  );
  const readOptions = { maxXfccElements, isTrustedProxy: trust.byThumbprint };
  const connections = new WeakMap<object, Connection>();
  const ignoredPeers = new WeakMap<PeerCertificate, Map<string, PeerCertificate>>();
  const noForwardedCertificate = proxied(undefined, undefined, undefined);

  function connectionOf(req: ForwardingRequestLike): Connection {
    const session = (req.stream as ServerHttp2Stream | undefined)?.session as Http2Session | undefined;
    const key = (session ?? req.socket) as object | undefined;
    let connection = typeof key === "object" && key !== null ? connections.get(key) : undefined;
    if (connection === undefined) {
      connection = readConnection(req, (session?.socket ?? req.socket) as TLSSocket | undefined);
      if (typeof key === "object" && key !== null) {
        connections.set(key, connection);
      }
    }
    return connection;
  }

  function readConnection(req: ForwardingRequestLike, socket: TLSSocket | undefined): Connection {
    const address = socket?.remoteAddress;
    if (trust.byAddress(address)) {
      // The proxy's own certificate is never the client's, so it is not read
      // (and peer.ts does not warn about plaintext or requestCert).
      return { proxy: true, direct: noForwardedCertificate };
    }
    if (socket?.encrypted !== true) {
      warnOnce(
        "proxy_plaintext",
        `certgate: a plaintext request came from ${String(address)}, which is not a trusted proxy; it carries no client certificate and is refused`,
      );
      return { proxy: false, direct: plaintextPeer };
    }
    const direct = peerCertificateOf(req);
    const proxy = trust.hasThumbprints && direct.certificate !== undefined && trust.byThumbprint(direct.certificate);
    return { proxy, direct };
  }

  function ignored(direct: PeerCertificate, names: string[], req: ForwardingRequestLike): PeerCertificate {
    const key = names.join(",");
    let byNames = ignoredPeers.get(direct);
    if (byNames === undefined) {
      byNames = new Map();
      ignoredPeers.set(direct, byNames);
    }
    let peer = byNames.get(key);
    if (peer === undefined) {
      // A derived object of its own: the same certificate as the direct peer,
      // so sharing the decision core's cache key with nobody else is safe.
      peer = Object.freeze({ ...direct, ignoredForwardingHeaders: Object.freeze([...names]) });
      byNames.set(key, peer);
      const address = (req.socket as { remoteAddress?: string } | undefined)?.remoteAddress;
      warnOnce(
        "proxy_untrusted",
        `certgate: ${key} came from ${String(address)}, which is not a trusted proxy; ignored (see trustedProxies)`,
      );
    }
    return peer;
  }

  function forwarded(header: Header, value: string): PeerCertificate {
    if (value.length > maxHeaderLength) {
      return proxied(undefined, header.name, invalid(header.name, `longer than ${maxHeaderLength} characters`));
    }
    let peer = header.cache.get(value);
    if (peer === undefined) {
      const result = readForwardedCertificate(header.format, value, readOptions);
      if (result.kind === "certificate") {
        peer = proxied(result.certificate, header.name, undefined);
      } else if (result.kind === "none") {
        if (result.why === "hash_only") {
          warnOnce(
            "xfcc_hash_only",
            "certgate: x-forwarded-client-cert has a Hash but no Cert; configure the proxy to forward the certificate (Envoy: set_current_client_cert_details.cert: true), or every call is refused",
          );
        }
        peer = proxied(undefined, header.name, undefined);
      } else {
        warnOnce(
          "proxy_header",
          `certgate: a trusted proxy sent an unreadable ${header.name} header (${result.message}); such calls are refused`,
        );
        peer = proxied(undefined, header.name, invalid(header.name, result.message));
      }
      header.cache.set(value, peer);
    }
    return peer;
  }

  function peerOf(req: ForwardingRequestLike): PeerCertificate {
    const connection = connectionOf(req);
    const present = presentHeaders(req, headers);
    if (!connection.proxy) {
      return present.length === 0
        ? connection.direct
        : ignored(
            connection.direct,
            present.map((p) => p.header.name),
            req,
          );
    }
    if (present.length === 0) {
      return noForwardedCertificate;
    }
    const first = present[0] as PresentHeader<Header>;
    if (present.length > 1) {
      const names = present.map((p) => p.header.name).join(", ");
      return proxied(undefined, first.header.name, invalid(names, "headers of several formats in one request"));
    }
    if (first.value === undefined) {
      return proxied(undefined, first.header.name, invalid(first.header.name, "header sent more than once"));
    }
    return forwarded(first.header, first.value);
  }

  return (req) => {
    try {
      return peerOf(nodeRequestOf(req));
    } catch (error) {
      // The adapter calls this outside of any error handling; a request that
      // cannot be read is refused rather than crashing the server.
      return { certificate: undefined, authorized: false, authorizationError: undefined, encrypted: false, error };
    }
  };
}

function proxied(
  certificate: PeerCertificate["certificate"],
  forwardedHeader: string | undefined,
  error: unknown,
): PeerCertificate {
  return Object.freeze({
    certificate,
    // certgate did not verify a forwarded chain; the proxy may have.
    authorized: false,
    authorizationError: undefined,
    // A certificate can only have been presented to the proxy over TLS.
    encrypted: certificate !== undefined,
    source: "proxy" as const,
    ...(forwardedHeader === undefined ? {} : { forwardedHeader }),
    ...(error === undefined ? {} : { error }),
  });
}

const plaintextPeer: PeerCertificate = Object.freeze({
  certificate: undefined,
  authorized: false,
  authorizationError: undefined,
  encrypted: false,
});

function invalid(header: string, message: string): Error {
  return new Error(`forwarded client certificate in ${header}: ${message}`);
}
