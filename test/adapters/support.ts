// Servers and clients for the Express and Fastify tests: real HTTPS servers on
// 127.0.0.1, the Connect client of connect-node, curl.
import { execFile } from "node:child_process";
import * as http2 from "node:http2";
import * as https from "node:https";
import type { AddressInfo } from "node:net";
import * as tls from "node:tls";
import type { ContextValues, Interceptor, ConnectRouter, HandlerContext } from "@connectrpc/connect";
import { createClient, type Client } from "@connectrpc/connect";
import { expressConnectMiddleware } from "@connectrpc/connect-express";
import { fastifyConnectPlugin } from "@connectrpc/connect-fastify";
import { createConnectTransport, createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import express from "express";
import { fastify, type FastifyInstance, type FastifyRequest, type RawServerBase } from "fastify";
import {
  clientCertificateKey,
  guardRequestHandler,
  isMalformedRequest,
  peerCertificateKey,
  type PeerCertificate,
} from "certgate";
import type { IssuedCertificate } from "certgate/dev";
import { EchoService } from "certgate/example";

export type Framework = "express" | "fastify";
export type HttpVersion = "1.1" | "2";

/** A framework, and the HTTP version its clients speak. */
export interface Variant {
  readonly name: string;
  readonly framework: Framework;
  readonly http: HttpVersion;
}

export const variants: readonly Variant[] = [
  // Express serves HTTP/1.1 only (its request object cannot wrap Node's HTTP/2 request).
  { name: "express, HTTP/1.1", framework: "express", http: "1.1" },
  { name: "fastify, HTTP/1.1", framework: "fastify", http: "1.1" },
  { name: "fastify, HTTP/2", framework: "fastify", http: "2" },
];

/** What a handler saw: the peer certificate object of each call. */
export interface Seen {
  readonly peers: PeerCertificate[];
}

export interface ServerOptions {
  readonly requestGate?: (ctx: HandlerContext) => void | Promise<void>;
  readonly interceptors?: Interceptor[];
  readonly contextValues: (req: express.Request | FastifyRequest) => ContextValues;
}

export interface Running {
  readonly url: string;
  readonly port: number;
  readonly seen: Seen;
  /** TLS connections accepted so far. */
  connections(): number;
  /** The bytes the server read of a closed connection, by the client's local port. */
  bytesReadOf(clientPort: number): number | undefined;
  close(): Promise<void>;
}

function routes(seen: Seen) {
  return (router: ConnectRouter) =>
    router.service(EchoService, {
      echo(req, ctx) {
        seen.peers.push(ctx.values.get(peerCertificateKey) as PeerCertificate);
        return { text: `${req.text}, ${ctx.values.get(clientCertificateKey)?.subject ?? "?"}` };
      },
      async *echoServerStream(req) {
        for (let i = 0; i < req.count; i++) yield { text: req.text };
      },
      async echoClientStream(reqs) {
        let text = "";
        for await (const r of reqs) text += r.text;
        return { text };
      },
    });
}

/** startServer runs the echo service on the variant's framework, HTTPS with requestCert. */
export async function startServer(
  variant: Variant,
  server: IssuedCertificate,
  options: ServerOptions,
): Promise<Running> {
  const seen: Seen = { peers: [] };
  const tlsOptions = { cert: server.cert, key: server.key, requestCert: true, rejectUnauthorized: false };
  const adapterOptions = {
    routes: routes(seen),
    ...(options.requestGate === undefined ? {} : { requestGate: options.requestGate }),
    ...(options.interceptors === undefined ? {} : { interceptors: options.interceptors }),
  };
  let connections = 0;
  const bytesRead = new Map<number, number>();
  const count = (socket: tls.TLSSocket) => {
    connections++;
    const port = socket.remotePort;
    socket.on("close", () => {
      if (port !== undefined) bytesRead.set(port, socket.bytesRead);
    });
  };
  if (variant.framework === "express") {
    const app = express();
    // As the README and examples/express-server.ts do.
    app.use(guardRequestHandler(expressConnectMiddleware({ ...adapterOptions, contextValues: options.contextValues })));
    const httpsServer = https.createServer(tlsOptions, app);
    httpsServer.on("secureConnection", count);
    await new Promise<void>((resolve) => httpsServer.listen(0, "127.0.0.1", resolve));
    const port = (httpsServer.address() as AddressInfo).port;
    return {
      url: `https://127.0.0.1:${port}`,
      port,
      seen,
      connections: () => connections,
      bytesReadOf: (port) => bytesRead.get(port),
      close: () =>
        new Promise<void>((resolve) => {
          httpsServer.close(() => resolve());
          httpsServer.closeAllConnections();
        }),
    };
  }
  const pluginOptions = { ...adapterOptions, contextValues: options.contextValues };
  // As the README and examples/fastify-server.ts do: the hook and Connect's
  // routes in one plugin of their own.
  const connect = async (scope: FastifyInstance<RawServerBase>) => {
    scope.addHook("onRequest", async (request, reply) => {
      if (isMalformedRequest(request.raw)) return reply.code(400).send("malformed request\n");
    });
    await scope.register(fastifyConnectPlugin, pluginOptions);
  };
  let app: {
    server: tls.Server;
    listen(o: { port: number; host: string }): Promise<string>;
    close(): Promise<undefined>;
  };
  if (variant.http === "2") {
    const h2 = fastify({ http2: true, https: { ...tlsOptions, allowHTTP1: true } });
    await h2.register(connect);
    app = h2;
  } else {
    const h1 = fastify({ https: tlsOptions });
    await h1.register(connect);
    app = h1;
  }
  await app.listen({ port: 0, host: "127.0.0.1" });
  app.server.on("secureConnection", count);
  const port = (app.server.address() as AddressInfo).port;
  return {
    url: `https://127.0.0.1:${port}`,
    port,
    seen,
    connections: () => connections,
    bytesReadOf: (port) => bytesRead.get(port),
    close: async () => {
      await app.close();
    },
  };
}

/** A Connect client on one connection (a keep-alive agent of one socket, or one HTTP/2 session). */
export interface EchoClient {
  readonly client: Client<typeof EchoService>;
  close(): void;
}

export function echoClient(
  running: Running,
  http: HttpVersion,
  ca: string,
  who: IssuedCertificate | undefined,
  protocol: "connect" | "grpc" = "connect",
): EchoClient {
  const credentials = who === undefined ? {} : { cert: who.cert, key: who.key };
  if (http === "2") {
    const sessionManager = new Http2SessionManager(running.url, undefined, { ca, ...credentials });
    const options = { baseUrl: running.url, httpVersion: "2" as const, sessionManager };
    const transport = protocol === "grpc" ? createGrpcTransport(options) : createConnectTransport(options);
    return { client: createClient(EchoService, transport), close: () => sessionManager.abort() };
  }
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca, ...credentials });
  const transport = createConnectTransport({ baseUrl: running.url, httpVersion: "1.1", nodeOptions: { agent } });
  return { client: createClient(EchoService, transport), close: () => agent.destroy() };
}

export interface CurlResult {
  readonly status: number;
  readonly body: string;
}

/** curl calls Echo with the Connect protocol (JSON), with a certificate or without. */
export function curl(
  running: Pick<Running, "url">,
  http: HttpVersion,
  files: { ca: string; cert?: string; key?: string },
  headers: readonly string[] = [],
): Promise<CurlResult> {
  const args = [
    "--silent",
    "--show-error",
    http === "2" ? "--http2" : "--http1.1",
    "--cacert",
    files.ca,
    "-H",
    "content-type: application/json",
    ...headers.flatMap((h) => ["-H", h]),
    "-d",
    '{"text":"hello"}',
    "-w",
    "\n%{http_code}",
    `${running.url}/certgate.example.v1.EchoService/Echo`,
  ];
  if (files.cert !== undefined && files.key !== undefined) {
    args.push("--cert", files.cert, "--key", files.key);
  }
  return new Promise((resolve, reject) => {
    execFile("curl", args, (error, stdout, stderr) => {
      if (error) {
        reject(new Error(`curl failed: ${stderr}`, { cause: error }));
        return;
      }
      const cut = stdout.lastIndexOf("\n");
      resolve({ status: Number(stdout.slice(cut + 1)), body: stdout.slice(0, cut) });
    });
  });
}

/** What a raw client got: the status and body, or how the server hung up instead. */
export interface RawAnswer {
  readonly status: number | "closed" | "reset";
  readonly body: string;
}

/**
 * malformedHttp1 sends, over TLS (ALPN http/1.1) and without a client
 * certificate, as a hostile client would, one HTTP/1.1 POST with the given
 * Host, or an HTTP/1.0 POST without Host when `host` is undefined.
 */
export function malformedHttp1(port: number, host: string | undefined): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect(
      { host: "127.0.0.1", port, rejectUnauthorized: false, ALPNProtocols: ["http/1.1"] },
      () => {
        const head =
          host === undefined
            ? "POST /certgate.example.v1.EchoService/Echo HTTP/1.0\r\n"
            : `POST /certgate.example.v1.EchoService/Echo HTTP/1.1\r\nhost: ${host}\r\nconnection: close\r\n`;
        // Not half-closed: the server decides when the connection ends.
        socket.write(`${head}content-type: application/json\r\ncontent-length: 2\r\n\r\n{}`);
      },
    );
    let received = "";
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => (received += chunk));
    socket.on("error", reject);
    socket.on("close", () => {
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(received)?.[1];
      const cut = received.indexOf("\r\n\r\n");
      resolve({
        status: status === undefined ? "closed" : Number(status),
        body: cut < 0 ? "" : received.slice(cut + 4),
      });
    });
  });
}

/**
 * malformedHttp2 sends one POST with the given `:authority` on a new HTTP/2
 * session over TLS, without a client certificate.
 */
export async function malformedHttp2(port: number, authority: string): Promise<RawAnswer> {
  const session = http2.connect(`https://127.0.0.1:${port}`, { rejectUnauthorized: false });
  try {
    return await new Promise((resolve) => {
      let status: RawAnswer["status"] = "reset";
      let body = "";
      session.on("error", () => resolve({ status: "reset", body }));
      const req = session.request({
        ":method": "POST",
        ":path": "/certgate.example.v1.EchoService/Echo",
        ":authority": authority,
        "content-type": "application/json",
      });
      req.setEncoding("utf8");
      req.on("response", (headers) => (status = Number(headers[":status"])));
      req.on("data", (chunk: string) => (body += chunk));
      req.on("error", () => (status = "reset"));
      req.on("close", () => resolve({ status, body }));
      req.end("{}");
    });
  } finally {
    session.destroy();
  }
}

/**
 * statusBeforeBody sends the headers of a call that announces a large body
 * and sends none of it; resolves with the status line of the answer, which
 * only a server that refuses before reading the body gives.
 */
export function statusBeforeBody(running: Running, ca: string, who: IssuedCertificate | undefined): Promise<string> {
  return new Promise((resolve, reject) => {
    const credentials = who === undefined ? {} : { cert: who.cert, key: who.key };
    const socket = tls.connect(
      { host: "127.0.0.1", port: running.port, ca, servername: "localhost", ...credentials },
      () => {
        socket.write(
          "POST /certgate.example.v1.EchoService/Echo HTTP/1.1\r\nhost: localhost\r\n" +
            "content-type: application/json\r\ncontent-length: 100000000\r\n\r\n",
        );
      },
    );
    let received = "";
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => {
      received += chunk;
      const end = received.indexOf("\r\n");
      if (end >= 0) {
        resolve(received.slice(0, end));
        socket.destroy();
      }
    });
    socket.on("error", reject);
    socket.on("close", () => reject(new Error(`closed without a status line: ${JSON.stringify(received)}`)));
  });
}

/** What `http1Upload` saw, on the client's socket. */
export interface Http1UploadResult {
  /** The response's status, 0 without one. */
  readonly status: number;
  /** The response's `connection` header, lower case, if any. */
  readonly connection: string | undefined;
  /** Whether the server half-closed (FIN) or reset the connection. */
  readonly closedByServer: boolean;
  /** The client's local port, to find the server's side of the connection. */
  readonly port: number;
}

/**
 * http1Upload POSTs a `total`-byte Connect call to Echo over HTTP/1.1 and,
 * as a hostile client does, goes on sending after the response until the
 * server closes the connection or the body is sent (the test suite's
 * test/support/raw-requests.ts has the same client for connect-node).
 */
export function http1Upload(
  running: Running,
  ca: string,
  who: IssuedCertificate | undefined,
  total: number,
): Promise<Http1UploadResult> {
  return new Promise((resolve, reject) => {
    const credentials = who === undefined ? {} : { cert: who.cert, key: who.key };
    const socket = tls.connect({
      host: "127.0.0.1",
      port: running.port,
      ca,
      servername: "localhost",
      ALPNProtocols: ["http/1.1"],
      ...credentials,
    });
    let received = "";
    let sent = 0;
    let closedByServer = false;
    let done = false;
    let port = 0;
    const chunk = Buffer.alloc(64 * 1024, 0x20);
    const pump = () => {
      while (!done && sent < total) {
        const n = Math.min(chunk.length, total - sent);
        sent += n;
        if (!socket.write(chunk.subarray(0, n))) {
          socket.once("drain", pump);
          return;
        }
      }
    };
    socket.once("secureConnect", () => {
      port = socket.localPort ?? 0;
      socket.write(
        "POST /certgate.example.v1.EchoService/Echo HTTP/1.1\r\nhost: localhost\r\n" +
          `content-type: application/json\r\ncontent-length: ${total}\r\n\r\n`,
      );
      pump();
    });
    socket.on("data", (d: Buffer) => (received += d.toString("latin1")));
    socket.on("end", () => {
      closedByServer = true;
      done = true;
      socket.end();
    });
    socket.on("error", (e: NodeJS.ErrnoException) => {
      if (e.code === "ECONNRESET" || e.code === "EPIPE") {
        closedByServer = true;
        done = true;
        socket.destroy();
      } else {
        reject(e);
      }
    });
    socket.on("close", () => {
      done = true;
      const head = received.slice(0, Math.max(0, received.indexOf("\r\n\r\n")));
      resolve({
        status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? 0),
        connection: /\r\nconnection: *([^\r]*)/i.exec(head)?.[1]?.toLowerCase(),
        closedByServer,
        port,
      });
    });
  });
}

/** What `http2Upload` saw. */
export interface Http2UploadResult {
  readonly status: number;
  /** The RST_STREAM code the stream closed with (0, NO_ERROR, for a full response then a reset or an orderly close). */
  readonly rstCode: number;
  /** Body bytes the client handed to the stream before it closed. */
  readonly sent: number;
  /** Whether the client ended its side itself (it had sent the whole body). */
  readonly ended: boolean;
}

/**
 * http2Upload POSTs a `total`-byte Connect call to Echo on a new HTTP/2
 * session and goes on sending after the response, honouring flow control,
 * until the server closes the stream or the body is sent.
 */
export async function http2Upload(
  running: Running,
  ca: string,
  who: IssuedCertificate | undefined,
  total: number,
): Promise<Http2UploadResult> {
  const credentials = who === undefined ? {} : { cert: who.cert, key: who.key };
  const session = http2.connect(running.url, { ca, servername: "localhost", ...credentials });
  session.on("error", () => {});
  try {
    return await new Promise((resolve) => {
      const stream = session.request({
        ":method": "POST",
        ":path": "/certgate.example.v1.EchoService/Echo",
        "content-type": "application/json",
      });
      let status = 0;
      let sent = 0;
      let ended = false;
      const chunk = Buffer.alloc(64 * 1024, 0x20);
      const pump = () => {
        while (!stream.closed && !stream.destroyed && sent < total) {
          const n = Math.min(chunk.length, total - sent);
          sent += n;
          if (!stream.write(chunk.subarray(0, n))) {
            stream.once("drain", pump);
            return;
          }
        }
        if (!stream.closed && !stream.destroyed) {
          ended = true;
          stream.end();
        }
      };
      stream.on("response", (h) => (status = Number(h[":status"])));
      stream.on("data", () => {});
      stream.on("error", () => {});
      stream.on("close", () => resolve({ status, rstCode: stream.rstCode ?? -1, sent, ended }));
      pump();
    });
  } finally {
    session.destroy();
  }
}
