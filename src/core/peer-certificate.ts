// The client certificate of one connection, read once per connection from
// its TLS socket. Framework-neutral: an adapter gives the connection's key
// object and a way to reach its TLS socket.
import type { Http2Session, ServerHttp2Stream } from "node:http2";
import type { X509Certificate } from "node:crypto";
import { certificateOfPeerInfo, parseCertificate, type Certificate, type PeerCertificateInfo } from "./certificate.js";
import { knownCertificate } from "./known-certificate.js";
import { checkSessionRead, readSession, sessionReads } from "./session-reads.js";
import { warnOnce } from "./warn-once.js";

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

/**
 * TlsSocketLike is what certgate reads of a connection's TLS socket: a Node
 * `TLSSocket` is one. An adapter whose framework hides the socket may pass
 * an object of its own with the same members.
 */
export interface TlsSocketLike {
  readonly encrypted?: boolean;
  readonly authorized?: boolean;
  readonly authorizationError?: unknown;
  getPeerX509Certificate(): X509Certificate | undefined;
  /**
   * Node's `TLSSocket.getPeerCertificate`: when present, it is used instead
   * of `getPeerX509Certificate()`, which costs more on a new connection
   * whose client sent a chain.
   */
  getPeerCertificate?(detailed: false): Partial<PeerCertificateInfo> | null | undefined;
  /**
   * Node's `TLSSocket.getSession`: when present with `getPeerCertificate`,
   * the certificate's DER is read from the session, the cheapest way.
   */
  getSession?(): Uint8Array | undefined;
}

/**
 * peerCertificateOf returns the `PeerCertificate` of the request's connection,
 * reading it on the first request of the connection: keyed by the HTTP/2
 * session or the HTTP/1.1 TLS socket (`req.socket` of an HTTP/2 request is a
 * per-stream proxy, so keying on it would miss on every call).
 */
export function peerCertificateOf(req: NodeRequestLike): PeerCertificate {
  let session: Http2Session | undefined;
  try {
    req = nodeRequestOf(req);
    session = (req.stream as ServerHttp2Stream | undefined)?.session as Http2Session | undefined;
  } catch (error) {
    return unreadablePeer(error);
  }
  // The warm path: a connection already read, no closure to make.
  const known = peers.get((session ?? req.socket) as object);
  if (known !== undefined) {
    return known;
  }
  if (session !== undefined) {
    return readPeerCertificate(session, () => session.socket as unknown as TlsSocketLike | undefined);
  }
  return readPeerCertificate(req.socket, () => {
    const socket = req.socket as (TlsSocketLike & { disableRenegotiation?: () => void }) | undefined;
    // The certificate is read once per HTTP/1.1 connection: a TLS 1.2
    // renegotiation to another certificate must not keep the first
    // identity, so it is refused (Node already refuses it on HTTP/2).
    socket?.disableRenegotiation?.();
    return socket;
  });
}

/**
 * readPeerCertificate returns the `PeerCertificate` of a connection, reading
 * it from `socketOf()` the first time it sees `connection` (any object that
 * lives as long as the connection: an HTTP/2 session, a TLS socket) and
 * returning the same object afterwards, so that per-connection state (limits,
 * caches) can be keyed by it. It never throws: a connection that cannot be read
 * is a peer without a certificate, with an `error`, which is refused.
 */
export function readPeerCertificate(connection: unknown, socketOf: () => TlsSocketLike | undefined): PeerCertificate {
  try {
    const key = typeof connection === "object" && connection !== null ? connection : undefined;
    let peer = key === undefined ? undefined : peers.get(key);
    if (peer === undefined) {
      peer = readPeer(socketOf());
      if (key !== undefined) {
        peers.set(key, peer);
      }
    }
    return peer;
  } catch (error) {
    // Adapters call this outside of any error handling: throwing here
    // would crash the server. A connection that cannot be read is refused.
    return unreadablePeer(error);
  }
}

function unreadablePeer(error: unknown): PeerCertificate {
  return { certificate: undefined, authorized: false, authorizationError: undefined, encrypted: false, error };
}

function readPeer(socket: TlsSocketLike | undefined): PeerCertificate {
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
  let info: Partial<PeerCertificateInfo> | null | undefined;
  try {
    // Each member read once: on HTTP/2, `session.socket` is a proxy that
    // binds a new function on every read of a method.
    const getSession = sessionReads === false ? undefined : socket.getSession;
    const fromSession = typeof getSession === "function" ? readSession(getSession, socket) : undefined;
    if (fromSession !== undefined && fromSession !== null && sessionReads === true) {
      const certificate = knownCertificate(fromSession);
      if (certificate !== undefined) return { certificate, authorized, authorizationError, encrypted: true };
    }
    const getPeerCertificate = socket.getPeerCertificate;
    if (typeof getPeerCertificate === "function") {
      if (fromSession !== null || sessionReads !== true) {
        // Node answers `{}` when the peer sent no certificate.
        info = getPeerCertificate.call(socket, false);
        if (fromSession !== undefined && sessionReads === undefined) checkSessionRead(fromSession, info);
      }
    } else {
      x509 = socket.getPeerX509Certificate();
    }
  } catch (error) {
    return { certificate: undefined, authorized, authorizationError, encrypted: true, error };
  }
  if (info !== undefined && info !== null && info.raw !== undefined) {
    try {
      return {
        certificate: certificateOfPeerInfo(info as PeerCertificateInfo),
        authorized,
        authorizationError,
        encrypted: true,
      };
    } catch (error) {
      return { certificate: undefined, authorized, authorizationError, encrypted: true, error };
    }
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
function requestsCertificates(socket: TlsSocketLike): boolean {
  const s = socket as TlsSocketLike & { _requestCert?: boolean; server?: { requestCert?: boolean } };
  return s._requestCert === true || s.server?.requestCert === true;
}
