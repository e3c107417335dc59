import { setMaxListeners } from "node:events";
import * as http2 from "node:http2";
import { listenOn } from "../core/listen-address.js";
import type { TLSSocket } from "node:tls";
import { Code, ConnectError } from "@connectrpc/connect";
import { parseCertificate } from "../core/certificate.js";
import { decodePemOrDer } from "../core/pem-der.js";
import { guardRequestHandler } from "../connect/guard-request-handler.js";
import { peerCertificateContextValues } from "../connect/context-values.js";
import type { AccessOptions } from "./access.js";
import { createCertificateStoreService, type CertificateStoreServiceHandler } from "./certificate-store-service.js";
import type { CertificateStoreServiceOptions } from "./certificate-store-service-options.js";
import { positiveInteger } from "../core/options.js";
import { closeIdleConnections } from "./connection-timeouts.js";
import { createHealthService, type HealthServiceHandler } from "./health.js";
import { createReflectionService } from "./reflection.js";
import { CertificateStoreService } from "../gen/certgate/v1/certificate_store_pb.js";
import { Health } from "../gen/grpc/health/v1/health_pb.js";
import { createLazyNodeHandler } from "./lazy-node-handler.js";
import type { ReplicaState } from "../core/store.js";
import { consoleRequestHandler } from "./console-request-handler.js";

/**
 * CertificateStoreServerOptions configures `createCertificateStoreServer`:
 * the service's options, the server's TLS identity, and an optional client CA.
 */
export interface CertificateStoreServerOptions extends CertificateStoreServiceOptions {
  /** The server's certificate (chain), PEM. Required. */
  cert: string | Buffer;
  /** The server certificate's private key, PEM. Required. */
  key: string | Buffer;
  /**
   * CA certificate(s), PEM, that every client certificate must chain to, on
   * top of being on the admin or reader list. Node's TLS layer verifies the
   * chain (with intermediates the client sends) and the access gate refuses
   * what it did not verify (`access.requireTrustedChain`). By default, none:
   * the admin and reader lists alone decide.
   */
  clientCa?: string | Buffer;
  /**
   * Serve `grpc.health.v1.Health`, open to clients without a certificate
   * (see `createHealthService`). By default, true.
   */
  health?: boolean;
  /**
   * Serve gRPC server reflection (`grpc.reflection.v1` and `v1alpha`, see
   * `createReflectionService`) describing the store and health services, so
   * that `buf curl --reflect` and grpcurl need no proto. Behind the same
   * access gate as the store's read RPCs: reader and admin certificates only.
   * By default, true.
   */
  reflection?: boolean;
  /**
   * More options for `http2.createSecureServer`, such as `minVersion`.
   * certgate sets `cert`, `key`, `ca`, `requestCert` and
   * `rejectUnauthorized` itself. By default, none.
   */
  tlsOptions?: Omit<http2.SecureServerOptions, "cert" | "key" | "ca" | "requestCert" | "rejectUnauthorized">;
  /**
   * How long `close()` lets calls finish before it ends the connections,
   * in milliseconds. By default, 5000.
   */
  shutdownTimeoutMs?: number;
  /**
   * Close a connection after this long without a call, in milliseconds: an
   * HTTP/2 connection without open streams (with a GOAWAY), an HTTP/1.1
   * connection between requests, and a connection that never sends a
   * request. Calls in progress (watches) keep theirs open. 0 turns it off.
   * By default, 60000.
   */
  idleTimeoutMs?: number;
  /**
   * After this many refused calls on one HTTP/2 connection (unknown
   * certificates, or a reader calling a mutating RPC), close it with GOAWAY:
   * see `createFastRefusalHandler`. `Infinity` never closes.
   * By default, 100.
   */
  maxRefusedCallsPerConnection?: number;
  /**
   * Close a connection whose TLS handshake has not finished after this long,
   * in milliseconds (Node's `handshakeTimeout`). By default, 10000.
   */
  handshakeTimeoutMs?: number;
  /**
   * Serve the console, the single-page app at `/` (see docs/console.md):
   * `true` for the built one in the package, or `{ directory }` for a build
   * elsewhere. Calls that change the store from a web page of another
   * origin are refused either way. By default, false (`certgate serve`
   * turns it on).
   */
  console?: boolean | { directory?: string };
}

/**
 * CertificateStoreServer is an HTTP/2 TLS server (HTTP/1.1 allowed) serving
 * the certificate store service and the health service.
 */
export interface CertificateStoreServer {
  /** The Node server, not yet listening. */
  readonly server: http2.Http2SecureServer;
  /** The service, for its epoch. */
  readonly service: CertificateStoreServiceHandler;
  /** The health service, to report NOT_SERVING; undefined with `health: false`. */
  readonly health: HealthServiceHandler | undefined;
  /**
   * Starts listening. By default, port 0 (any free port) on 127.0.0.1.
   * Resolves with the address and the `https://` URL to give clients;
   * rejects when `@connectrpc/connect-node` is not installed.
   */
  listen(port?: number, host?: string): Promise<{ host: string; port: number; url: string }>;
  /**
   * Stops accepting connections, ends watches, lets running calls finish up
   * to `shutdownTimeoutMs`, then ends the connections. Does not close the
   * store.
   */
  close(): Promise<void>;
}

/**
 * createCertificateStoreServer builds the server that `certgate serve` runs:
 * HTTP/2 with TLS that asks every client for a certificate (but lets those
 * without one reach the health service), the certificate store service
 * behind its access gate, `grpc.health.v1.Health`, and gRPC server reflection
 * behind the same gate. Configuration
 * mistakes (no TLS identity, a client CA that is not a certificate, no admin
 * or reader) throw here.
 *
 * @example
 * const server = createCertificateStoreServer({
 *   store: createMemoryStore(),
 *   cert, key,
 *   access: { admin: { thumbprints: [adminThumbprint] }, reader: { stores: [readers] } },
 * });
 * const { url } = await server.listen(8444, "0.0.0.0");
 */
export function createCertificateStoreServer(options: CertificateStoreServerOptions): CertificateStoreServer {
  if (isEmpty(options.cert) || isEmpty(options.key)) {
    throw new TypeError("certificate store server: cert and key (PEM) are required");
  }
  const clientCa = options.clientCa === undefined ? undefined : checkClientCa(options.clientCa);
  const access: AccessOptions = {
    ...options.access,
    requireTrustedChain: options.access?.requireTrustedChain ?? clientCa !== undefined,
  };
  const service = createCertificateStoreService({ ...options, access });
  // The watch limits apply to each service's own Watch calls.
  const health =
    options.health === false
      ? undefined
      : createHealthService({
          maxWatchesPerConnection: options.maxWatchesPerConnection,
          maxWatches: options.maxWatches,
        });
  // A replica of a shared store serves only while it reaches the store.
  const reportState = (state: ReplicaState) => {
    const status = state === "connected" ? "SERVING" : "NOT_SERVING";
    health?.setStatus("", status);
    health?.setStatus(CertificateStoreService.typeName, status);
  };
  const offState = options.store.sharedLog?.onState(reportState);
  if (options.store.sharedLog !== undefined) reportState(options.store.sharedLog.state);
  const reflection =
    options.reflection === false
      ? undefined
      : createReflectionService({
          services: health === undefined ? [CertificateStoreService] : [CertificateStoreService, Health],
          requestGate: service.requestGate,
          recheck: service.recheck,
        });
  const shutdown = new AbortController();
  // Connect links every running call's signal to this one: many concurrent
  // calls are normal here, not a listener leak.
  setMaxListeners(0, shutdown.signal);
  const shutdownTimeoutMs = options.shutdownTimeoutMs ?? 5000;
  const idleTimeoutMs = positiveInteger("certificate store server: idleTimeoutMs", options.idleTimeoutMs, 60_000, 0);
  const handshakeTimeoutMs = positiveInteger(
    "certificate store server: handshakeTimeoutMs",
    options.handshakeTimeoutMs,
    options.tlsOptions?.handshakeTimeout ?? 10_000,
    1,
  );
  // connect-node is an optional peer dependency, loaded here and awaited
  // by listen(), so that `import "certgate"` works without it.
  const node = createLazyNodeHandler({
    routes(router) {
      service.routes(router);
      health?.routes(router);
      reflection?.routes(router);
    },
    contextValues: peerCertificateContextValues,
    shutdownSignal: shutdown.signal,
  });
  const server = http2.createSecureServer(
    {
      ...options.tlsOptions,
      cert: options.cert,
      key: options.key,
      ...(clientCa === undefined ? {} : { ca: clientCa }),
      requestCert: true,
      // The access gate refuses with a proper status instead of a TLS
      // alert, and health probes without a certificate get through.
      rejectUnauthorized: false,
      allowHTTP1: options.tlsOptions?.allowHTTP1 ?? true,
      handshakeTimeout: handshakeTimeoutMs,
    },
    // A malformed request (a bad :authority, HTTP/1.0 without Host) gets a
    // 400 instead of ending the process; a refused call on a known HTTP/2
    // connection is answered with the access gate's recorded refusal before
    // Connect builds anything (health, open to all, is never refused).
    consoleRequestHandler(
      guardRequestHandler(
        service.directWatch(node.handler, {
          contextValues: peerCertificateContextValues,
          shutdownSignal: shutdown.signal,
        }),
        {
          gate: service.requestGate,
          maxRefusedCallsPerConnection: options.maxRefusedCallsPerConnection,
        },
      ),
      { console: options.console ?? false, requestGate: service.requestGate },
    ),
  );
  closeIdleConnections(server, idleTimeoutMs);
  const sessions = new Set<http2.ServerHttp2Session>();
  const sockets = new Set<TLSSocket>();
  server.on("session", (session: http2.ServerHttp2Session) => {
    sessions.add(session);
    session.on("close", () => sessions.delete(session));
  });
  server.on("secureConnection", (socket: TLSSocket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  let closing: Promise<void> | undefined;

  return {
    server,
    service,
    health,
    async listen(port = 0, host = "127.0.0.1") {
      await node.ready;
      return listenOn(server, port, host, "https");
    },
    close() {
      closing ??= (async () => {
        offState?.();
        health?.close();
        await service.close();
        shutdown.abort(new ConnectError("server is shutting down", Code.Unavailable));
        const closed = new Promise<void>((resolve) => {
          if (!server.listening) {
            resolve();
            return;
          }
          server.close(() => resolve());
        });
        for (const session of sessions) {
          session.close();
        }
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          closed,
          new Promise<void>((resolve) => {
            timer = setTimeout(resolve, shutdownTimeoutMs);
          }),
        ]);
        clearTimeout(timer);
        for (const socket of sockets) {
          socket.destroy();
        }
        await closed;
      })();
      return closing;
    },
  };
}

function isEmpty(value: string | Buffer | undefined): boolean {
  return value === undefined || value === null || value.length === 0;
}

// Reads the client CA bundle at start-up: a typo or the wrong file must
// fail here, not turn into a silent refusal of every client.
function checkClientCa(pem: string | Buffer): string {
  const text = typeof pem === "string" ? pem : pem.toString("utf8");
  const decoded = decodePemOrDer(text, { otherBlocks: "skip" });
  if (decoded.kind === "problem") {
    if (decoded.code === "private_key" || decoded.code === "pkcs12") {
      throw new TypeError("certificate store server: clientCa contains a private key; give only the CA certificate(s)");
    }
    throw new TypeError(
      `certificate store server: clientCa holds a CERTIFICATE that cannot be read (${decoded.reason})`,
    );
  }
  if (!decoded.pem || decoded.ders.length === 0) {
    throw new TypeError("certificate store server: clientCa holds no PEM CERTIFICATE");
  }
  for (const der of decoded.ders) {
    try {
      parseCertificate(der);
    } catch (cause) {
      throw new TypeError("certificate store server: clientCa holds a CERTIFICATE that cannot be read", { cause });
    }
  }
  return text;
}
