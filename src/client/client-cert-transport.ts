import type { ConnectionOptions } from "node:tls";
import type { Transport } from "@connectrpc/connect";
import type { ConnectTransportOptions, Http2SessionOptions } from "@connectrpc/connect-node";
import { createTlsFiles, type TlsFileContents, type TlsFiles, type TlsFilesOptions } from "../core/tls-files.js";
import { createRotatingSessions, type RotatingSessions } from "./rotating-sessions.js";

type ConnectNode = typeof import("@connectrpc/connect-node");

/**
 * ClientCertTransportOptions configures `createClientCertTransport`.
 */
export interface ClientCertTransportOptions {
  /** The server's base URL, `https://HOST:PORT`. Required. */
  baseUrl: string;
  /**
   * The client certificate, its key and the CA that issued the server's
   * certificate, followed on disk (see `createTlsFiles`). Give `files`, or
   * the paths `cert`, `key` and optionally `ca`, from which the transport
   * makes its own (closed by `close()`).
   */
  files?: TlsFiles;
  /** The client certificate file (PEM), when `files` is not given. */
  cert?: string;
  /** Its private key file (PEM), when `files` is not given. */
  key?: string;
  /**
   * The file of the CA certificate(s) to trust for the server's certificate,
   * when `files` is not given. By default, the system's trusted CAs.
   */
  ca?: string;
  /** Options of the files made from `cert`, `key` and `ca` (`onEvent`, `meterProvider`, ...). */
  filesOptions?: Omit<TlsFilesOptions, "cert" | "key" | "ca">;
  /** The protocol: `"connect"`, `"grpc"` or `"grpc-web"`. By default, `"connect"`. */
  protocol?: "connect" | "grpc" | "grpc-web";
  /** The HTTP version; gRPC needs `"2"`. By default, `"2"`. */
  httpVersion?: "2" | "1.1";
  /**
   * More TLS options of each connection (such as `servername` or
   * `checkServerIdentity`); `cert`, `key` and `ca` come from the files.
   * By default, none.
   */
  tlsOptions?: Omit<ConnectionOptions, "cert" | "key" | "ca" | "host" | "port" | "path" | "socket">;
  /** HTTP/2 keep-alive and time-out options of each connection. By default, connect-node's. */
  sessionOptions?: Http2SessionOptions;
  /**
   * The other options of connect-node's transport: `interceptors`,
   * `useBinaryFormat`, compression, `defaultTimeoutMs`, ... By default, none.
   */
  transportOptions?: Omit<ConnectTransportOptions, "baseUrl" | "httpVersion" | "nodeOptions" | "sessionManager">;
}

/**
 * ClientCertTransport is a Connect transport that presents the current
 * client certificate of its files on each new connection.
 */
export interface ClientCertTransport extends Transport {
  /** The files it presents. */
  readonly files: TlsFiles;
  /**
   * Ends its connections (calls in progress fail) and stops following the
   * files it made itself; a `files` given to it stays open.
   */
  close(): void;
}

/**
 * createClientCertTransport returns a connect-node transport that presents
 * a client certificate read from files and picks up a renewed one without a
 * restart: calls in progress finish on the connection they started on, and
 * the next call opens a connection with the new certificate (over HTTP/2,
 * the old connection is closed once its last call ends).
 * `@connectrpc/connect-node` is loaded on the first call; its absence fails
 * that call, naming the package.
 *
 * @example
 * const transport = createClientCertTransport({
 *   baseUrl: "https://api.internal:8443",
 *   cert: "/var/run/secrets/client/tls.crt",
 *   key: "/var/run/secrets/client/tls.key",
 *   ca: "/var/run/secrets/client/ca.crt",
 *   protocol: "grpc",
 * });
 * const client = createClient(EchoService, transport);
 */
export function createClientCertTransport(options: ClientCertTransportOptions): ClientCertTransport {
  if (typeof options !== "object" || options === null) {
    throw new TypeError("certgate: createClientCertTransport() needs options: { baseUrl, cert, key, ca? }");
  }
  let url: URL;
  try {
    url = new URL(options.baseUrl);
  } catch {
    throw new TypeError(
      `certgate: createClientCertTransport() options.baseUrl must be an https:// URL, got ${options.baseUrl}`,
    );
  }
  if (url.protocol !== "https:") {
    throw new TypeError(
      `certgate: createClientCertTransport() options.baseUrl must be an https:// URL (client certificates need TLS), got ${options.baseUrl}`,
    );
  }
  const protocol = options.protocol ?? "connect";
  const httpVersion = options.httpVersion ?? "2";
  if (protocol === "grpc" && httpVersion !== "2") {
    throw new TypeError('certgate: createClientCertTransport() protocol "grpc" needs httpVersion "2"');
  }
  if (options.files !== undefined && (options.cert ?? options.key ?? options.ca) !== undefined) {
    throw new TypeError("certgate: createClientCertTransport() takes files or cert/key/ca, not both");
  }
  const owned = options.files === undefined;
  const files =
    options.files ??
    createTlsFiles({
      ...options.filesOptions,
      cert: options.cert as string,
      key: options.key as string,
      ...(options.ca === undefined ? {} : { ca: options.ca }),
    });
  let closed = false;
  let sessions: RotatingSessions | undefined;
  let current: Transport | undefined;
  let loading: Promise<ConnectNode> | undefined;
  const tlsOf = (contents: TlsFileContents) => ({ ...options.tlsOptions, ...contents });
  const build = (node: ConnectNode, contents: TlsFileContents): Transport => {
    const make =
      protocol === "grpc"
        ? node.createGrpcTransport
        : protocol === "grpc-web"
          ? node.createGrpcWebTransport
          : node.createConnectTransport;
    if (httpVersion === "2") {
      sessions ??= createRotatingSessions(node, url, options.sessionOptions, tlsOf(contents));
      return make({ ...options.transportOptions, baseUrl: options.baseUrl, httpVersion, sessionManager: sessions });
    }
    // HTTP/1.1: Node's agents pool connections by their TLS options, so a
    // new certificate gets new connections and the old ones idle out.
    return make({
      ...options.transportOptions,
      baseUrl: options.baseUrl,
      httpVersion,
      nodeOptions: tlsOf(contents) as never,
    });
  };
  const stop = files.onChange((contents) => {
    if (sessions !== undefined) {
      sessions.rotate(tlsOf(contents));
    } else {
      current = undefined;
    }
  });
  const transport = async (): Promise<Transport> => {
    if (closed) throw new Error("certgate: the client certificate transport is closed");
    loading ??= import("@connectrpc/connect-node").catch((cause: unknown) => {
      loading = undefined;
      throw new Error(
        "certgate: createClientCertTransport() needs @connectrpc/connect-node; install it (npm install @connectrpc/connect-node)",
        { cause },
      );
    });
    const node = await loading;
    current ??= build(node, files.secureContextOptions());
    return current;
  };
  return {
    files,
    async unary(...args) {
      return (await transport()).unary(...args);
    },
    async stream(...args) {
      return (await transport()).stream(...args);
    },
    close() {
      if (closed) return;
      closed = true;
      stop();
      sessions?.close();
      if (owned) files.close();
    },
  };
}
