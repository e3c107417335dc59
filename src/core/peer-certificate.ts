// The client certificate of one connection, read once per connection from
// its TLS socket. Framework-neutral: an adapter gives the connection's key
// object and a way to reach its TLS socket.
import type { Http2Session, ServerHttp2Stream } from "node:http2";
import type { X509Certificate } from "node:crypto";
import {
  certificateOfPeerDer,
  certificateOfPeerInfo,
  parseCertificate,
  type Certificate,
  type PeerCertificateInfo,
} from "./certificate.js";
import { readValidity } from "./certificate-validity.js";
import { peerDerOfTlsSession } from "./tls-session-peer.js";
import { createLruCache } from "./lru-cache.js";
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

// Whether this process reads client certificates from the TLS session:
// undefined until the first certificate read from a session has been
// compared with getPeerCertificate(false), then the answer. A Node built
// against a TLS library whose session encoding differs falls back for good;
// CERTGATE_SESSION=off turns the session read off from the start.
let sessionReads: boolean | undefined = sessionReadsSetting(process.env.CERTGATE_SESSION);

// CERTGATE_SESSION: "off" reads every certificate with getPeerCertificate(false),
// unset or "on" reads the session. Anything else is a mistake that must not
// change the read silently, so it warns and keeps the default.
function sessionReadsSetting(value: string | undefined): false | undefined {
  if (value === undefined || value === "" || value === "on") return undefined;
  if (value === "off") return false;
  warnOnce(
    "session_setting",
    `certgate: CERTGATE_SESSION=${JSON.stringify(value).slice(0, 40)} is not "on" or "off"; reading client certificates from the TLS session`,
  );
  return undefined;
}

// The client certificate's DER (a byte string, see peerDerOfTlsSession) in
// the socket's TLS session, null when the session holds none, undefined
// when there is no session or it cannot be read (then getPeerCertificate
// decides).
function readSession(getSession: () => Uint8Array | undefined, socket: TlsSocketLike): string | null | undefined {
  try {
    const session = getSession.call(socket);
    if (!(session instanceof Uint8Array)) return undefined;
    return peerDerOfTlsSession(session) ?? null;
  } catch {
    return undefined;
  }
}

function checkSessionRead(fromSession: string | null, info: Partial<PeerCertificateInfo> | null | undefined): void {
  const raw = info?.raw;
  if (fromSession === null || !(raw instanceof Uint8Array)) {
    // Agreement on "no certificate" proves nothing; a disagreement does.
    if (fromSession !== null || raw instanceof Uint8Array) sessionReads = false;
    return;
  }
  sessionReads = Buffer.compare(Buffer.from(fromSession, "latin1"), raw) === 0;
  if (!sessionReads) {
    warnOnce(
      "session",
      "certgate: the TLS session's client certificate differs from getPeerCertificate(); reading it with getPeerCertificate() from now on",
    );
  }
}

// Clients reconnect with the same certificate: a returning client's new
// connection gets the Certificate already read for its DER, so it costs no
// parse and no hash, and the decision, which is kept per certificate, is
// already made (until the store or the policy changes). Each connection
// still has its own PeerCertificate. Bounded in entries and in bytes (a
// certificate over 8 KiB, far above any real client's, is not kept), so a
// flood of distinct certificates holds at most about 10 MB and costs what
// a first-seen certificate always costs.
const knownCertificates = createLruCache<string, Certificate>(1024);
const maxKnownDerLength = 8192;

function knownCertificate(der: string): Certificate | undefined {
  // peek, not get: a hit costs one map look-up, and a client pushed out by
  // 1024 newer certificates is read once more.
  let certificate = der.length <= maxKnownDerLength ? knownCertificates.peek(der) : undefined;
  if (certificate === undefined) {
    // A Uint8Array of its own: a small Buffer.from() shares Node's pool,
    // which `certificate.der.buffer` would hand to any handler.
    const bytes = new Uint8Array(Buffer.from(der, "latin1"));
    let validity: { notBefore: Date; notAfter: Date };
    try {
      validity = readValidity(bytes);
    } catch {
      // A date in a form RFC 5280 does not allow: Node's reading decides.
      return undefined;
    }
    certificate = certificateOfPeerDer(bytes, validity);
    if (der.length <= maxKnownDerLength) knownCertificates.set(der, certificate);
  }
  return certificate;
}

// tls.Server keeps its options on the server object; each TLSSocket also
// remembers whether it asked for a certificate.
function requestsCertificates(socket: TlsSocketLike): boolean {
  const s = socket as TlsSocketLike & { _requestCert?: boolean; server?: { requestCert?: boolean } };
  return s._requestCert === true || s.server?.requestCert === true;
}
