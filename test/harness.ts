import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import type { TLSSocket } from "node:tls";
import type { ConnectRouter, Interceptor } from "@connectrpc/connect";
import { connectNodeAdapter, createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import type { HandlerContext } from "@connectrpc/connect";
import { EchoService } from "../src/gen/certgate/example/v1/echo_pb.js";
import { clientCertificateKey, peerCertificateContextValues } from "../src/index.js";
import { createDevCa, issueDevCertificate, type IssuedCertificate } from "../src/dev-certificates.js";

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
  close(): Promise<void>;
}

export interface TestServerOptions {
  pki: TestPki;
  interceptors?: Interceptor[];
  requestGate?: (ctx: HandlerContext) => void | Promise<void>;
  requestCert?: boolean;
  /** Give the TLS layer the CA (it then sets socket.authorized). */
  trustCa?: boolean;
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
    connectNodeAdapter({
      routes: echoRoutes(log),
      interceptors: options.interceptors,
      requestGate: options.requestGate,
      contextValues: peerCertificateContextValues,
    }),
  );
  const sockets = new Set<TLSSocket>();
  server.on("secureConnection", (s: TLSSocket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `https://127.0.0.1:${port}`,
    port,
    log,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      }),
  };
}

export type Protocol = "connect" | "grpc" | "grpc-web";

/** A connect-node transport presenting `client` (or no certificate). */
export function transportFor(
  server: TestServer,
  pki: TestPki,
  client: IssuedCertificate | undefined,
  protocol: Protocol = "connect",
  httpVersion: "1.1" | "2" = "2",
) {
  const nodeOptions = {
    ca: pki.ca.cert,
    ...(client === undefined ? {} : { cert: client.cert, key: client.key }),
  };
  const base = { baseUrl: server.url, nodeOptions };
  if (protocol === "grpc") return createGrpcTransport({ ...base });
  if (protocol === "grpc-web") return createGrpcWebTransport({ ...base, httpVersion });
  return createConnectTransport({ ...base, httpVersion });
}

/** Waits until `condition` holds, polling, with a generous deadline. */
export async function waitFor(condition: () => boolean | Promise<boolean>, what: string, deadlineMs = 10_000): Promise<void> {
  const end = Date.now() + deadlineMs;
  while (!(await condition())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
