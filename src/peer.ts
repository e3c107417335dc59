import type { Http2Session, ServerHttp2Stream } from "node:http2";
import type { TLSSocket } from "node:tls";
import { createContextKey, createContextValues, type ContextValues } from "@connectrpc/connect";
import { parseCertificate, type Certificate } from "./certificate.js";

/**
 * PeerCertificate is what certgate knows of the client at the other end of
 * one connection. One object is made per connection and shared by all of its
 * requests, so it also serves as the key of per-connection caches.
 */
export interface PeerCertificate {
  /** The client certificate, or undefined when none was presented. */
  readonly certificate: Certificate | undefined;
  /**
   * Whether Node's TLS layer verified the certificate's chain against the
   * server's `ca` (`socket.authorized`).
   */
  readonly authorized: boolean;
  /** Why Node's TLS layer did not verify the chain (`socket.authorizationError`). */
  readonly authorizationError: string | undefined;
  /** Whether the connection is encrypted at all. */
  readonly encrypted: boolean;
  /** Why a presented certificate could not be read, if it could not. */
  readonly error?: unknown;
  /**
   * Where the certificate came from: `"tls"`, the connection's own handshake,
   * or `"proxy"`, a header set by a trusted proxy (see
   * `createPeerCertificateContextValues`). Undefined means `"tls"`.
   */
  readonly source?: "tls" | "proxy";
  /** For `source: "proxy"`, the header the certificate was read from, lower case. */
  readonly forwardedHeader?: string;
  /**
   * Certificate-forwarding headers the request carried that were ignored
   * because its connection is not from a trusted proxy, lower case.
   */
  readonly ignoredForwardingHeaders?: readonly string[];
}

/**
 * peerCertificateKey is the context key under which
 * `peerCertificateContextValues` stores the `PeerCertificate` of the request's
 * connection. It is undefined when the adapter was not given certgate's
 * `contextValues`.
 */
export const peerCertificateKey = createContextKey<PeerCertificate | undefined>(undefined, {
  description: "certgate peer certificate",
});

/**
 * clientCertificateKey is the context key that holds the client's
 * `Certificate` once certgate admitted the call, for handlers:
 * `ctx.values.get(clientCertificateKey)`. It is undefined before that.
 */
export const clientCertificateKey = createContextKey<Certificate | undefined>(undefined, {
  description: "certgate client certificate",
});

/**
 * NodeRequestLike is the part of a Node HTTP/1.1 or HTTP/2 server request that
 * certgate reads. Express passes Node's request itself; Fastify passes its own
 * request object, whose `raw` is Node's request.
 */
export interface NodeRequestLike {
  readonly socket: unknown;
  readonly stream?: unknown;
  /** Node's request, when this is a framework's wrapper of it (Fastify). */
  readonly raw?: unknown;
}

/**
 * nodeRequestOf returns the Node request behind a framework's request object:
 * Fastify's `request.raw`, or the request itself. Only Node's request reaches
 * the HTTP/2 stream (and so the session that is the connection) and the raw
 * header list.
 */
export function nodeRequestOf<T extends NodeRequestLike>(req: T): T {
  const raw = req.raw;
  return typeof raw === "object" && raw !== null && "socket" in raw ? (raw as T) : req;
}

// One PeerCertificate per connection: keyed by the HTTP/2 session or the
// HTTP/1.1 TLS socket. `req.socket` of an HTTP/2 request is a per-stream
// proxy, so keying on it would miss on every call.
const peers = new WeakMap<object, PeerCertificate>();
const warned = new Set<string>();

/**
 * peerCertificateContextValues reads the client certificate of the request's
 * TLS connection and stores it under `peerCertificateKey`, for
 * `connectNodeAdapter({ contextValues: peerCertificateContextValues })`, and
 * the same option of `expressConnectMiddleware` and `fastifyConnectPlugin`.
 * The certificate is read and parsed once per connection, not per request.
 *
 * @example
 * http2.createSecureServer(
 *   { cert, key, requestCert: true, rejectUnauthorized: false },
 *   connectNodeAdapter({ routes, interceptors, contextValues: peerCertificateContextValues }),
 * );
 */
export function peerCertificateContextValues(
  req: NodeRequestLike,
  values: ContextValues = createContextValues(),
): ContextValues {
  return values.set(peerCertificateKey, peerCertificateOf(req));
}

/**
 * peerCertificateOf returns the `PeerCertificate` of the request's connection,
 * reading it on the first request of the connection.
 */
export function peerCertificateOf(req: NodeRequestLike): PeerCertificate {
  try {
    req = nodeRequestOf(req);
    const session = (req.stream as ServerHttp2Stream | undefined)?.session as
      | Http2Session
      | undefined;
    const key = (session ?? req.socket) as object | undefined;
    let peer = typeof key === "object" && key !== null ? peers.get(key) : undefined;
    if (peer === undefined) {
      const socket = (session?.socket ?? req.socket) as TLSSocket | undefined;
      peer = readPeer(socket);
      if (session === undefined) {
        // The certificate is read once per HTTP/1.1 connection: a TLS 1.2
        // renegotiation to another certificate must not keep the first
        // identity, so it is refused (Node already refuses it on HTTP/2).
        (socket as Partial<TLSSocket> | undefined)?.disableRenegotiation?.();
      }
      if (typeof key === "object" && key !== null) {
        peers.set(key, peer);
      }
    }
    return peer;
  } catch (error) {
    // The adapter calls this outside of any error handling: throwing here
    // would crash the server. A connection that cannot be read is refused.
    return { certificate: undefined, authorized: false, authorizationError: undefined, encrypted: false, error };
  }
}

function readPeer(socket: TLSSocket | undefined): PeerCertificate {
  if (socket === undefined || socket.encrypted !== true) {
    warnOnce(
      "plaintext",
      "certgate: a request arrived without TLS; client certificates need https or http2.createSecureServer, so every call is refused",
    );
    return { certificate: undefined, authorized: false, authorizationError: undefined, encrypted: false };
  }
  const authorized = socket.authorized === true;
  const authorizationError =
    socket.authorizationError === undefined || socket.authorizationError === null
      ? undefined
      : String(socket.authorizationError);
  let x509;
  try {
    x509 = socket.getPeerX509Certificate();
  } catch (error) {
    return { certificate: undefined, authorized, authorizationError, encrypted: true, error };
  }
  if (x509 === undefined) {
    if (!requestsCertificates(socket)) {
      warnOnce(
        "requestCert",
        "certgate: the TLS server does not ask clients for a certificate; create it with requestCert: true, or every call is refused",
      );
    }
    return { certificate: undefined, authorized, authorizationError, encrypted: true };
  }
  try {
    return { certificate: parseCertificate(x509), authorized, authorizationError, encrypted: true };
  } catch (error) {
    return { certificate: undefined, authorized, authorizationError, encrypted: true, error };
  }
}

// tls.Server keeps its options on the server object; each TLSSocket also
// remembers whether it asked for a certificate.
function requestsCertificates(socket: TLSSocket): boolean {
  const s = socket as TLSSocket & { _requestCert?: boolean; server?: { requestCert?: boolean } };
  return s._requestCert === true || s.server?.requestCert === true;
}

/**
 * warnOnce emits a process warning the first time it is called with a code.
 */
export function warnOnce(code: string, message: string): void {
  if (!warned.has(code)) {
    warned.add(code);
    process.emitWarning(message, { code: `CERTGATE_${code.toUpperCase()}` });
  }
}
