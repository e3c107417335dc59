// The process behind `certgate authz`: one listener that answers forward
// auth (HTTP/1.1 and HTTP/2) and Envoy's Check (gRPC), over TLS or, on a
// loopback address, in plaintext with HTTP/1.1 and h2c on the same port.
import * as http from "node:http";
import * as http2 from "node:http2";
import * as net from "node:net";
import { listenOn } from "../core/listen-address.js";
import { guardRequestHandler } from "../connect/guard-request-handler.js";
import { createDecisionCore, type ClientCertOptions, type DecisionCore } from "../decision/decision.js";
import { createForwardedPeerReader, type PeerCertificateContextValuesOptions } from "../proxy/forwarded-peer.js";
import { createTrustedProxyCheck } from "../proxy/trusted-proxies.js";
import type { PeerCertificate } from "../core/peer-certificate.js";
import { createAuthzDecide } from "./authz-decision.js";
import { createExtAuthzHandler, extAuthzCheckPath } from "./ext-authz.js";
import { createForwardAuthHandler, type AuthzRequestEvent } from "./forward-auth.js";

/**
 * AuthzServerOptions configures `createAuthzServer`: the decision (store and
 * policy, as the interceptors take them) and how the proxies forward the
 * client certificate.
 */
export interface AuthzServerOptions extends ClientCertOptions {
  /**
   * Which peers are the proxies, and the headers they forward the client
   * certificate in. Requests from any other address are answered 403
   * (`untrusted_proxy`). Required; `formats` may be empty when only Envoy's
   * Check is used (it carries the certificate in its body).
   */
  forwarded: PeerCertificateContextValuesOptions;
  /** The server's certificate and key (PEM) for TLS. By default, plaintext (HTTP/1.1 and h2c). */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** Called for every denial and every request from an untrusted address. By default, nothing. */
  onDenied?: (event: AuthzRequestEvent) => void;
  /**
   * The most bytes of request headers accepted (HTTP/1.1 and HTTP/2); more
   * is answered 431 or reset. By default, 32768.
   */
  maxHeaderBytes?: number;
  /**
   * Close a connection after this long without a request, in milliseconds.
   * By default, 60000.
   */
  idleTimeoutMs?: number;
  /**
   * How long a new connection may take to send its request headers (and its
   * TLS handshake), in milliseconds. By default, 10000.
   */
  headersTimeoutMs?: number;
}

/**
 * AuthzServer is a running decision service.
 */
export interface AuthzServer {
  /** The decision it asks. */
  readonly core: DecisionCore;
  /**
   * The Node TLS server when `tls` is given (for `setSecureContext` when the
   * files are renewed), else undefined.
   */
  readonly tlsServer: http2.Http2SecureServer | undefined;
  /** Starts listening; port 0 picks a free one. By default, 127.0.0.1:0. */
  listen(port?: number, host?: string): Promise<{ host: string; port: number; url: string }>;
  /** Stops listening and ends the connections. */
  close(): Promise<void>;
}

/** healthPath is the health path, for the proxy's upstream checks: 200 "ok". */
export const healthPath = "/healthz";

/**
 * createAuthzServer checks the options (throwing a `TypeError` naming a bad
 * one) and returns the decision service. Every path but `/healthz` and
 * Envoy's Check is a forward-auth request.
 */
export function createAuthzServer(options: AuthzServerOptions): AuthzServer {
  const core = createDecisionCore(options);
  const decide = createAuthzDecide(core);
  const trust = createTrustedProxyCheck(options.forwarded?.trustedProxies);
  // Without formats, only Envoy's Check carries certificates: forward auth
  // then sees none, and refuses.
  const readPeer =
    (options.forwarded?.formats ?? []).length === 0
      ? () => noForwardedCertificate
      : createForwardedPeerReader(options.forwarded);
  const maxHeaderBytes = options.maxHeaderBytes ?? 32768;
  const idleTimeoutMs = options.idleTimeoutMs ?? 60_000;
  const headersTimeoutMs = options.headersTimeoutMs ?? 10_000;
  const forwardAuth = createForwardAuthHandler({ decide, trust, readPeer, onDenied: options.onDenied });
  const extAuthz = createExtAuthzHandler({ decide, trust, onDenied: options.onDenied });
  const handler = guardRequestHandler(
    (req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse) => {
      const url = req.url ?? "";
      if (url === healthPath || url.startsWith(`${healthPath}?`)) {
        res.writeHead(200, { "content-type": "text/plain", "content-length": "3" });
        res.end("ok\n");
      } else if (url === extAuthzCheckPath) {
        extAuthz.handle(req, res);
      } else {
        forwardAuth(req, res);
      }
    },
  );

  const sockets = new Set<net.Socket>();
  const sessions = new Set<http2.ServerHttp2Session>();
  const h2Options = { settings: { maxHeaderListSize: maxHeaderBytes }, maxSessionMemory: 10 };
  const onSession = (session: http2.ServerHttp2Session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
    session.on("error", () => {});
    session.setTimeout(idleTimeoutMs, () => session.close());
  };
  let listener: net.Server;
  let h1Server: http.Server | undefined;
  let tlsServer: http2.Http2SecureServer | undefined;
  if (options.tls !== undefined) {
    const secure = http2.createSecureServer(
      {
        ...h2Options,
        cert: options.tls.cert,
        key: options.tls.key,
        allowHTTP1: true,
        handshakeTimeout: headersTimeoutMs,
      },
      handler,
    );
    secure.on("session", onSession);
    secure.on("sessionError", () => {});
    secure.on("tlsClientError", () => {});
    secure.setTimeout(idleTimeoutMs);
    listener = secure;
    tlsServer = secure;
  } else {
    const h1 = http.createServer(
      {
        maxHeaderSize: maxHeaderBytes,
        headersTimeout: headersTimeoutMs,
        requestTimeout: headersTimeoutMs * 3,
        keepAliveTimeout: idleTimeoutMs,
        // How often slow headers are looked for: by default every 30 s.
        connectionsCheckingInterval: Math.min(headersTimeoutMs, 1000),
      },
      handler,
    );
    h1.on("clientError", (error: NodeJS.ErrnoException, socket) => {
      const status =
        error.code === "ERR_HTTP_REQUEST_TIMEOUT"
          ? "408 Request Timeout"
          : error.code === "HPE_HEADER_OVERFLOW"
            ? "431 Request Header Fields Too Large"
            : "400 Bad Request";
      if (socket.writable) socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
      socket.destroy();
    });
    // Node checks slow headers (headersTimeout, requestTimeout) from a timer
    // it starts when the server emits "listening": this server never listens
    // itself (it is handed sniffed connections), so it is told.
    h1.emit("listening");
    h1Server = h1;
    const h2c = http2.createServer(h2Options, handler);
    h2c.on("session", onSession);
    h2c.on("sessionError", () => {});
    listener = net.createServer((socket) => sniff(socket, h1, h2c, headersTimeoutMs));
  }
  listener.on("connection", (socket: net.Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });

  let closing: Promise<void> | undefined;
  return {
    core,
    tlsServer,
    async listen(port = 0, host = "127.0.0.1") {
      await extAuthz.ready;
      return listenOn(listener, port, host, options.tls === undefined ? "http" : "https");
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        h1Server?.closeAllConnections();
        h1Server?.close(() => {});
        listener.close(() => resolve());
        for (const session of sessions) session.destroy();
        for (const socket of sockets) socket.destroy();
      });
      return closing;
    },
  };
}

const noForwardedCertificate: PeerCertificate = Object.freeze({
  certificate: undefined,
  authorized: false,
  authorizationError: undefined,
  encrypted: false,
  source: "proxy" as const,
});

const preface = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

// A plaintext connection is HTTP/2 (h2c with prior knowledge, as Envoy's
// gRPC client and nginx's grpc_pass speak it) when it starts with the
// HTTP/2 preface, else HTTP/1.1. The bytes read to tell are handed back.
function sniff(socket: net.Socket, h1: http.Server, h2c: http2.Http2Server, timeoutMs: number): void {
  let seen = Buffer.alloc(0);
  socket.on("error", () => {});
  socket.setTimeout(timeoutMs, () => socket.destroy());
  const onData = (chunk: Buffer) => {
    seen = Buffer.concat([seen, chunk]);
    const n = Math.min(seen.length, preface.length);
    const h2 = seen.subarray(0, n).equals(preface.subarray(0, n));
    if (h2 && n < preface.length) return;
    socket.off("data", onData);
    socket.pause();
    socket.setTimeout(0);
    socket.unshift(seen);
    // HTTP/2 reads what is buffered on the next tick: the socket must stay
    // paused until then.
    if (h2) {
      h2c.emit("connection", socket);
    } else {
      h1.emit("connection", socket);
      socket.resume();
    }
  };
  socket.on("data", onData);
}
