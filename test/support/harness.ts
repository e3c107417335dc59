import * as http from "node:http";
import * as http2 from "node:http2";
import * as https from "node:https";
import type * as net from "node:net";
import type { AddressInfo } from "node:net";
import { afterAll, afterEach } from "vitest";
import { create, toBinary } from "@bufbuild/protobuf";
import {
  ConnectError,
  createClient,
  type Client,
  type ConnectRouter,
  type Interceptor,
  type Transport,
} from "@connectrpc/connect";
import {
  connectNodeAdapter,
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
  Http2SessionManager,
} from "@connectrpc/connect-node";
import type { HandlerContext } from "@connectrpc/connect";
import { EchoRequestSchema, EchoService } from "../../src/gen/certgate/example/v1/echo_pb.js";
import {
  clientCertificateKey,
  createChangeNotifier,
  parseCertificate,
  peerCertificateContextValues,
  type Certificate,
  type CertificateStore,
  type StoreVerdict,
} from "../../src/index.js";
import { createDevCa, issueDevCertificate, type IssuedCertificate } from "../../src/dev-certificates.js";

/** The PKI of one test file: a CA, a server certificate and client certificates. */
export interface TestPki {
  ca: IssuedCertificate;
  server: IssuedCertificate;
  alice: IssuedCertificate;
  bob: IssuedCertificate;
}

export async function createTestPki(): Promise<TestPki> {
  const ca = await createDevCa({ commonName: "certgate test CA" });
  const server = await issueDevCertificate(ca, {
    commonName: "localhost",
    dnsNames: ["localhost"],
    ipAddresses: ["127.0.0.1"],
    usages: ["server"],
  });
  const alice = await issueDevCertificate(ca, { commonName: "alice", usages: ["client"] });
  const bob = await issueDevCertificate(ca, { commonName: "bob", usages: ["client"] });
  return { ca, server, alice, bob };
}

/** Certificates of the test CA outside their validity window. */
export interface OutOfWindowCertificates {
  /** Valid from two years ago until a year ago. */
  expired: IssuedCertificate;
  /** Valid from a year from now for a year. */
  notYetValid: IssuedCertificate;
}

/** issueOutOfWindowCertificates issues an expired and a not yet valid client certificate. */
export async function issueOutOfWindowCertificates(pki: TestPki): Promise<OutOfWindowCertificates> {
  const year = 365 * 86400_000;
  const expired = await issueDevCertificate(pki.ca, {
    commonName: "expired",
    notBefore: new Date(Date.now() - 2 * year),
    notAfter: new Date(Date.now() - year),
  });
  const notYetValid = await issueDevCertificate(pki.ca, {
    commonName: "not yet valid",
    notBefore: new Date(Date.now() + year),
    notAfter: new Date(Date.now() + 2 * year),
  });
  return { expired, notYetValid };
}

/** The path of EchoService's Echo, for raw requests. */
export const echoPath = "/certgate.example.v1.EchoService/Echo";

/** grpcFrame returns an EchoRequest as one gRPC message frame (uncompressed). */
export function grpcFrame(text: string): Buffer {
  const message = toBinary(EchoRequestSchema, create(EchoRequestSchema, { text }));
  const frame = Buffer.alloc(5 + message.length);
  frame.writeUInt32BE(message.length, 1);
  frame.set(message, 5);
  return frame;
}

/** Handler calls seen by the echo service, to prove a refused call never ran. */
export interface HandlerLog {
  calls: string[];
  clientCommonNames: string[];
}

export function echoRoutes(log: HandlerLog) {
  const seen = (ctx: HandlerContext, what: string) => {
    log.calls.push(what);
    const cert = ctx.values.get(clientCertificateKey);
    log.clientCommonNames.push(cert?.subject ?? "<none>");
  };
  return (router: ConnectRouter) =>
    router.service(EchoService, {
      echo(req, ctx) {
        seen(ctx, "echo");
        return { text: req.text };
      },
      async *echoServerStream(req, ctx) {
        seen(ctx, "echoServerStream");
        for (let i = 0; i < req.count; i++) {
          yield { text: req.text };
        }
      },
      async echoClientStream(reqs, ctx) {
        seen(ctx, "echoClientStream");
        const parts: string[] = [];
        for await (const r of reqs) parts.push(r.text);
        return { text: parts.join("") };
      },
    });
}

export interface TestServer {
  url: string;
  port: number;
  log: HandlerLog;
  server: http2.Http2SecureServer;
  /** What the server saw: to assert that calls shared one connection. */
  stats: ServerStats;
  close(): Promise<void>;
}

/** Counts of what a test server accepted. */
export interface ServerStats {
  /** TLS connections (`secureConnection`), HTTP/2 and HTTP/1.1. */
  connections: number;
  /** HTTP/2 sessions (`session`). */
  sessions: number;
}

export interface TestServerOptions {
  pki: TestPki;
  interceptors?: Interceptor[];
  requestGate?: (ctx: HandlerContext) => void | Promise<void>;
  requestCert?: boolean;
  /** Give the TLS layer the CA (it then sets socket.authorized). */
  trustCa?: boolean;
  /** Pass `peerCertificateContextValues` to the adapter. By default, true. */
  contextValues?: boolean;
  /** Wraps the adapter's request handler (such as createFastRefusalHandler). By default, none. */
  wrapHandler?: (
    handler: (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void,
  ) => (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void;
}

/** Starts the echo service on 127.0.0.1, port 0, HTTP/2 with HTTP/1.1 allowed. */
export async function startEchoServer(options: TestServerOptions): Promise<TestServer> {
  const log: HandlerLog = { calls: [], clientCommonNames: [] };
  const server = http2.createSecureServer(
    {
      cert: options.pki.server.cert,
      key: options.pki.server.key,
      ca: options.trustCa === true ? options.pki.ca.cert : undefined,
      requestCert: options.requestCert ?? true,
      rejectUnauthorized: false,
      allowHTTP1: true,
    },
    (options.wrapHandler ?? ((h) => h))(
      connectNodeAdapter({
        routes: echoRoutes(log),
        interceptors: options.interceptors,
        requestGate: options.requestGate,
        contextValues: options.contextValues === false ? undefined : peerCertificateContextValues,
      }),
    ),
  );
  const { port, stats, close } = await listen(server, "secureConnection");
  return { url: `https://127.0.0.1:${port}`, port, log, server, stats, close };
}

/**
 * listen starts `server` on 127.0.0.1, port 0, counting what it accepts;
 * `close` stops it and destroys the connections still open, so that a test
 * never waits for a client's keep-alive.
 */
async function listen(
  server: net.Server,
  connectionEvent: "connection" | "secureConnection",
): Promise<{ port: number; stats: ServerStats; close(): Promise<void> }> {
  const stats: ServerStats = { connections: 0, sessions: 0 };
  const sockets = new Set<net.Socket>();
  server.on(connectionEvent, (s: net.Socket) => {
    stats.connections++;
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  server.on("session", () => {
    stats.sessions++;
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as AddressInfo).port,
    stats,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      }),
  };
}

export type Protocol = "connect" | "grpc" | "grpc-web";

/**
 * noDelayAgent returns a keep-alive HTTPS agent whose sockets set
 * TCP_NODELAY: connect-node sends HTTP/1.1 bodies chunked, in two writes, and
 * without it Nagle and delayed ACKs add ~40 ms to every call.
 */
function noDelayAgent(options: https.AgentOptions): https.Agent {
  const agent = new https.Agent({ keepAlive: true, ...options });
  const a = agent as unknown as { createConnection(...args: unknown[]): net.Socket };
  const createConnection = a.createConnection.bind(agent);
  a.createConnection = (...args: unknown[]) => createConnection(...args).setNoDelay(true);
  return agent;
}

// Like Node's global agent (keep-alive since Node 19), plus TCP_NODELAY; it
// pools sockets per TLS options, so clients with different certificates
// never share one.
const sharedHttp1Agent = noDelayAgent({});

/** The TLS options of a client trusting the test CA and presenting `client` (or no certificate). */
function clientTls(pki: TestPki, client: IssuedCertificate | undefined): { ca: string; cert?: string; key?: string } {
  return client === undefined ? { ca: pki.ca.cert } : { ca: pki.ca.cert, cert: client.cert, key: client.key };
}

/** A connect-node transport presenting `client` (or no certificate). */
export function transportFor(
  server: Pick<TestServer, "url">,
  pki: TestPki,
  client: IssuedCertificate | undefined,
  protocol: Protocol = "connect",
  httpVersion: "1.1" | "2" = "2",
) {
  const nodeOptions = {
    ...clientTls(pki, client),
    ...(httpVersion === "1.1" ? { agent: sharedHttp1Agent } : {}),
  };
  const base = { baseUrl: server.url, nodeOptions };
  if (protocol === "grpc") return createGrpcTransport({ ...base });
  if (protocol === "grpc-web") return createGrpcWebTransport({ ...base, httpVersion });
  return createConnectTransport({ ...base, httpVersion });
}

/** Waits until `condition` holds, polling, with a generous deadline. */
export async function waitFor(
  condition: () => boolean | Promise<boolean>,
  what: string,
  deadlineMs = 10_000,
): Promise<void> {
  const end = Date.now() + deadlineMs;
  while (!(await condition())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

// ---------------------------------------------------------------------------
// Helpers for the foundation's suite (issue 2): other servers, raw requests,
// a mutable store, warnings.

/** An echo server on 127.0.0.1 that is not the default HTTP/2 TLS one. */
export interface OtherEchoServer {
  url: string;
  port: number;
  log: HandlerLog;
  stats: ServerStats;
  close(): Promise<void>;
}

/** What `startOtherEchoServer` starts. */
export interface OtherEchoServerOptions {
  /**
   * `https`: `https.createServer` (HTTP/1.1 over TLS, `requestCert: true`);
   * `h2c`: `http2.createServer` (plaintext HTTP/2); `http`: `http.createServer`.
   */
  kind: "https" | "h2c" | "http";
  /** Needed for `https`. */
  pki?: TestPki;
  interceptors?: Interceptor[];
  requestGate?: (ctx: HandlerContext) => void | Promise<void>;
}

/** Starts the echo service on `https.createServer`, `http2.createServer` (h2c) or `http.createServer`. */
export async function startOtherEchoServer(options: OtherEchoServerOptions): Promise<OtherEchoServer> {
  const log: HandlerLog = { calls: [], clientCommonNames: [] };
  const handler = connectNodeAdapter({
    routes: echoRoutes(log),
    interceptors: options.interceptors,
    requestGate: options.requestGate,
    contextValues: peerCertificateContextValues,
  });
  let server: net.Server;
  if (options.kind === "https") {
    const pki = options.pki;
    if (pki === undefined) throw new Error("startOtherEchoServer: kind https needs pki");
    server = https.createServer(
      { cert: pki.server.cert, key: pki.server.key, requestCert: true, rejectUnauthorized: false },
      handler,
    );
  } else if (options.kind === "h2c") {
    server = http2.createServer(handler);
  } else {
    server = http.createServer(handler);
  }
  const { port, stats, close } = await listen(server, "connection");
  return { url: `${options.kind === "https" ? "https" : "http"}://127.0.0.1:${port}`, port, log, stats, close };
}

/** A response read with a plain `node:http2` client. */
export interface RawResponse {
  status: number;
  headers: http2.IncomingHttpHeaders;
  trailers: http2.IncomingHttpHeaders;
  body: Buffer;
}

/** What `rawHttp2Request` sends. */
export interface RawRequestOptions {
  /** Such as `/certgate.example.v1.EchoService/Echo`. */
  path: string;
  /** Request headers besides `:method` (POST) and `:path`. */
  headers: http2.OutgoingHttpHeaders;
  /** The request body. By default, none. */
  body?: Uint8Array | string;
  /**
   * End the request after the body. False sends the headers (and the body,
   * if any) and never ends the request. By default, true.
   */
  end?: boolean;
}

/**
 * rawHttp2Request sends one request on a new `node:http2` session presenting
 * `client` (or no certificate), reads the whole response (trailers
 * included), and closes the session. With `end: false` it still resolves
 * once the server ends its response.
 */
export async function rawHttp2Request(
  server: Pick<TestServer, "url">,
  pki: TestPki,
  client: IssuedCertificate | undefined,
  request: RawRequestOptions,
): Promise<RawResponse> {
  const session = http2.connect(server.url, clientTls(pki, client));
  try {
    return await new Promise<RawResponse>((resolve, reject) => {
      session.on("error", reject);
      const stream = session.request(
        { ":method": "POST", ":path": request.path, ...request.headers },
        { endStream: request.body === undefined && request.end !== false },
      );
      const chunks: Buffer[] = [];
      let headers: http2.IncomingHttpHeaders = {};
      let trailers: http2.IncomingHttpHeaders = {};
      stream.on("response", (h) => (headers = h));
      stream.on("trailers", (t) => (trailers = t));
      stream.on("data", (chunk: Buffer) => chunks.push(chunk));
      stream.on("error", reject);
      stream.on("end", () =>
        resolve({ status: Number(headers[":status"]), headers, trailers, body: Buffer.concat(chunks) }),
      );
      if (request.body !== undefined) {
        if (request.end === false) {
          stream.write(request.body);
        } else {
          stream.end(request.body);
        }
      }
    });
  } finally {
    await new Promise<void>((resolve) => session.close(() => resolve()));
  }
}

/** A `CertificateStore` whose contents a test changes; it counts look-ups. */
export interface TestStore extends CertificateStore {
  /** How many times `lookup` was called. */
  readonly lookups: number;
  /** Admits the certificate (its SHA-256 thumbprint) and bumps the revision. */
  add(certificate: IssuedCertificate): void;
  /** Stops admitting the certificate and bumps the revision. */
  remove(certificate: IssuedCertificate): void;
}

/**
 * createTestStore returns a mutable store admitting `certificates`. Look-ups
 * answer on a later turn of the event loop, like a real store, so that
 * concurrent calls can overlap.
 */
export function createTestStore(certificates: IssuedCertificate[] = []): TestStore {
  const notifier = createChangeNotifier();
  const admitted = new Set(certificates.map((c) => parseCertificate(c.cert).sha256));
  let lookups = 0;
  return {
    get revision() {
      return notifier.revision;
    },
    get lookups() {
      return lookups;
    },
    async lookup(certificate: Certificate): Promise<StoreVerdict> {
      lookups++;
      await new Promise((resolve) => setImmediate(resolve));
      return admitted.has(certificate.sha256)
        ? { kind: "admitted", entry: { id: certificate.sha256, thumbprint: certificate.sha256 } }
        : { kind: "refused", reason: "not_allowed" };
    },
    onChange: notifier.onChange,
    add(certificate) {
      admitted.add(parseCertificate(certificate.cert).sha256);
      notifier.changed();
    },
    remove(certificate) {
      admitted.delete(parseCertificate(certificate.cert).sha256);
      notifier.changed();
    },
    close() {
      notifier.clear();
      return Promise.resolve();
    },
  };
}

/** Collects process warnings until `stop()`. */
export function captureWarnings(): { warnings: (Error & { code?: string })[]; stop(): void } {
  const warnings: (Error & { code?: string })[] = [];
  const listener = (warning: Error) => warnings.push(warning);
  process.on("warning", listener);
  return { warnings, stop: () => process.off("warning", listener) };
}

/**
 * connectErrorOf awaits a call that must fail and returns its `ConnectError`;
 * it throws when the call succeeds, so a test expecting a refusal cannot pass
 * on an admission.
 */
export async function connectErrorOf(call: Promise<unknown>): Promise<ConnectError> {
  let result: unknown;
  try {
    result = await call;
  } catch (error) {
    return ConnectError.from(error);
  }
  throw new Error(`expected the call to fail, it succeeded with ${JSON.stringify(result)}`);
}

/** The parsed form of a generated certificate. */
export function certificateOf(issued: IssuedCertificate): Certificate {
  return parseCertificate(issued.cert);
}

/** What a test file opens, closed by the hooks of `closeAfterTests`. */
export interface TestResources {
  /** Servers, closed after the file's last test. */
  readonly servers: TestServer[];
  /** Transports, closed after each test. */
  readonly transports: OpenTransport[];
  /** An EchoService client on a connection of its own (`openTransport`), closed after the test. */
  echoClient(
    server: Pick<TestServer, "url">,
    pki: TestPki,
    client: IssuedCertificate | undefined,
    protocol?: Protocol,
  ): Client<typeof EchoService>;
}

/**
 * closeAfterTests registers the hooks that close what the test file pushes
 * to the lists it returns; call it once, at the top of the file.
 */
export function closeAfterTests(): TestResources {
  const servers: TestServer[] = [];
  const transports: OpenTransport[] = [];
  afterEach(() => {
    for (const t of transports.splice(0)) t.close();
  });
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.close()));
  });
  return {
    servers,
    transports,
    echoClient(server, pki, client, protocol) {
      const t = openTransport(server, pki, client, protocol);
      transports.push(t);
      return createClient(EchoService, t.transport);
    },
  };
}

/** A transport with its own connection, closed by `close()`. */
export interface OpenTransport {
  transport: Transport;
  close(): void;
}

/**
 * openTransport is `transportFor` with a connection the test owns: one
 * HTTP/2 session (or, for HTTP/1.1, one keep-alive agent) that every call of
 * the transport reuses, until `close()`.
 */
export function openTransport(
  server: Pick<TestServer, "url">,
  pki: TestPki,
  client: IssuedCertificate | undefined,
  protocol: Protocol = "connect",
  httpVersion: "1.1" | "2" = "2",
): OpenTransport {
  const tls = clientTls(pki, client);
  if (httpVersion === "1.1") {
    if (protocol === "grpc") throw new Error("openTransport: gRPC needs HTTP/2");
    const agent = noDelayAgent({ maxSockets: 1, ...tls });
    const options = { baseUrl: server.url, httpVersion, nodeOptions: { ...tls, agent } } as const;
    return {
      transport: protocol === "grpc-web" ? createGrpcWebTransport(options) : createConnectTransport(options),
      close: () => agent.destroy(),
    };
  }
  const sessionManager = new Http2SessionManager(server.url, {}, tls);
  const options = { baseUrl: server.url, httpVersion, nodeOptions: tls, sessionManager } as const;
  return {
    transport:
      protocol === "grpc"
        ? createGrpcTransport(options)
        : protocol === "grpc-web"
          ? createGrpcWebTransport(options)
          : createConnectTransport(options),
    close: () => sessionManager.abort(),
  };
}
