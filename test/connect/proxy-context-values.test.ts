import { X509Certificate, createHash } from "node:crypto";
import * as http from "node:http";
import * as http2 from "node:http2";
import * as https from "node:https";
import * as net from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import {
  connectNodeAdapter,
  createConnectTransport,
  createGrpcTransport,
  Http2SessionManager,
} from "@connectrpc/connect-node";
import { EchoService } from "../../src/gen/certgate/example/v1/echo_pb.js";
import {
  createClientCertGate,
  createClientCertInterceptor,
  createThumbprintStore,
  peerCertificateKey,
  type DecisionEvent,
  type PeerCertificate,
} from "../../src/index.js";
import { createPeerCertificateContextValues } from "../../src/connect/proxy-context-values.js";
import type { ForwardingRequestLike, PeerCertificateContextValuesOptions } from "../../src/proxy/forwarded-peer.js";
import type { ForwardingFormat } from "../../src/proxy/forwarding-formats.js";
import { createDecide } from "../../src/decision/decision.js";
import { issueDevCertificate, type IssuedCertificate } from "../../src/dev-certificates.js";
import { createTestPki, echoRoutes, waitFor, type HandlerLog, type TestPki } from "../support/harness.js";

// Whether this machine has IPv6 loopback, for the ::1 cases.
const ipv6Loopback = await new Promise<boolean>((resolve) => {
  const probe = net.createServer();
  probe.once("error", () => resolve(false));
  probe.listen(0, "::1", () => probe.close(() => resolve(true)));
});

// ---------------------------------------------------------------------------
// Certificates, and headers as each proxy writes them.

let pki: TestPki;
let proxy: IssuedCertificate; // a trusted proxy, pinned by SHA-1
let edge: IssuedCertificate; // a trusted proxy hop, pinned by SHA-256
const warnings: (Error & { code?: string })[] = [];
const onWarning = (w: Error) => warnings.push(w);

const sha1Of = (c: IssuedCertificate) => new X509Certificate(c.cert).fingerprint;
const sha256Of = (c: IssuedCertificate) => new X509Certificate(c.cert).fingerprint256.replace(/:/g, "");
const urlPem = (pem: string) => encodeURIComponent(pem);
const awsPem = (pem: string) => encodeURIComponent(pem).replace(/%2B/g, "+").replace(/%3D/g, "=").replace(/%2F/g, "/");
const hashOf = (c: IssuedCertificate) => createHash("sha256").update(c.der).digest("hex");
const xfccElement = (c: IssuedCertificate) =>
  `By=spiffe://cluster.local/ns/default/sa/api;Hash=${hashOf(c)};Cert="${urlPem(c.cert)}";Subject="${c.x509.subject}";URI=spiffe://cluster.local/ns/default/sa/client`;

const formats: ForwardingFormat[] = ["xfcc", "nginx", "aws-alb", "azure-app-service"];
const forwardingHeader = (format: ForwardingFormat, c: IssuedCertificate): Record<string, string> => {
  switch (format) {
    case "xfcc":
      return { "x-forwarded-client-cert": xfccElement(c) };
    case "nginx":
      return { "x-ssl-client-cert": urlPem(c.cert) };
    case "aws-alb":
      return { "x-amzn-mtls-clientcert": awsPem(c.cert + pki.ca.cert) };
    case "azure-app-service":
      return { "x-arr-clientcert": Buffer.from(c.der).toString("base64") };
    case "der-base64":
      return { "x-client-cert-der": Buffer.from(c.der).toString("base64") };
  }
};

beforeAll(async () => {
  process.on("warning", onWarning);
  pki = await createTestPki();
  proxy = await issueDevCertificate(pki.ca, { commonName: "proxy", usages: ["client"] });
  edge = await issueDevCertificate(pki.ca, { commonName: "edge", usages: ["client"] });
});
afterAll(() => {
  process.off("warning", onWarning);
});

// ---------------------------------------------------------------------------
// Servers and clients.

interface ProxyTestServer {
  url: string;
  log: HandlerLog;
  events: DecisionEvent[];
  remoteAddresses: string[];
  close(): Promise<void>;
}

interface ServerOptions {
  kind: "tls" | "h2c" | "http";
  options: PeerCertificateContextValuesOptions;
  /** The address to listen on. By default, 127.0.0.1. */
  host?: string;
  /** The address clients connect to. By default, 127.0.0.1. */
  connectHost?: string;
  /** For `tls`. By default, true. */
  requestCert?: boolean;
  /** Decide in a request gate instead of an interceptor. By default, false. */
  gate?: boolean;
}

/** The echo service admitting only alice, behind `createPeerCertificateContextValues`. */
async function startServer(o: ServerOptions): Promise<ProxyTestServer> {
  const log: HandlerLog = { calls: [], clientCommonNames: [] };
  const events: DecisionEvent[] = [];
  const remoteAddresses: string[] = [];
  const contextValues = createPeerCertificateContextValues(o.options);
  const store = createThumbprintStore(sha256Of(pki.alice));
  const handler = connectNodeAdapter({
    routes: echoRoutes(log),
    ...(o.gate === true
      ? { requestGate: createClientCertGate({ store, onDecision: (e) => events.push(e) }) }
      : { interceptors: [createClientCertInterceptor({ store, onDecision: (e) => events.push(e) })] }),
    contextValues: (req) => {
      remoteAddresses.push(String(req.socket.remoteAddress));
      return contextValues(req);
    },
  });
  const server: net.Server =
    o.kind === "tls"
      ? http2.createSecureServer(
          {
            cert: pki.server.cert,
            key: pki.server.key,
            requestCert: o.requestCert ?? true,
            rejectUnauthorized: false,
            allowHTTP1: true,
          },
          handler,
        )
      : o.kind === "h2c"
        ? http2.createServer(handler)
        : http.createServer(handler);
  const sockets = new Set<net.Socket>();
  server.on(o.kind === "tls" ? "secureConnection" : "connection", (s: net.Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, o.host ?? "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  const host = o.connectHost ?? "127.0.0.1";
  return {
    url: `${o.kind === "tls" ? "https" : "http"}://${host.includes(":") ? `[${host}]` : host}:${port}`,
    log,
    events,
    remoteAddresses,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      }),
  };
}

const closers: (() => void)[] = [];
afterEach(() => {
  for (const close of closers.splice(0)) close();
});

/** An Echo client on its own connection, presenting `client` (TLS only); closed after the test. */
function echoClient(
  server: ProxyTestServer,
  client: IssuedCertificate | undefined,
  protocol: "connect" | "grpc" = "connect",
  httpVersion: "1.1" | "2" = "2",
) {
  const tls = server.url.startsWith("https:")
    ? { ca: pki.ca.cert, ...(client === undefined ? {} : { cert: client.cert, key: client.key }) }
    : {};
  if (httpVersion === "1.1") {
    const agent = server.url.startsWith("https:")
      ? new https.Agent({ keepAlive: true, ...tls })
      : new http.Agent({ keepAlive: true });
    closers.push(() => agent.destroy());
    return createClient(
      EchoService,
      createConnectTransport({ baseUrl: server.url, httpVersion, nodeOptions: { ...tls, agent } }),
    );
  }
  const sessionManager = new Http2SessionManager(server.url, {}, tls);
  closers.push(() => sessionManager.abort());
  const options = { baseUrl: server.url, httpVersion, nodeOptions: tls, sessionManager } as const;
  return createClient(
    EchoService,
    protocol === "grpc" ? createGrpcTransport(options) : createConnectTransport(options),
  );
}

/** Awaits a call that must be refused; fails the test if it is admitted. */
async function refusal(call: Promise<unknown>): Promise<ConnectError> {
  try {
    await call;
  } catch (error) {
    return ConnectError.from(error);
  }
  throw new Error("expected the call to be refused, it was admitted");
}

function expectUnauthenticated(error: ConnectError, message: string): void {
  expect(error.code).toBe(Code.Unauthenticated);
  expect(error.rawMessage).toBe(message);
}

const notAllowed = "client certificate not allowed";
const noCertificate = "no client certificate presented";
const unreadable = "client certificate could not be read";
const echoPath = "/certgate.example.v1.EchoService/Echo";

// ---------------------------------------------------------------------------

describe("createPeerCertificateContextValues()", () => {
  describe("from a trusted proxy over TLS (trusted by its certificate)", () => {
    let server: ProxyTestServer;
    beforeAll(async () => {
      server = await startServer({
        kind: "tls",
        options: {
          trustedProxies: { thumbprints: [sha1Of(proxy), sha256Of(edge)] },
          formats,
          nginxHeader: "X-SSL-Client-Cert",
        },
      });
    });
    afterAll(() => server.close());

    for (const format of formats) {
      for (const protocol of ["connect", "grpc"] as const) {
        it(`admits alice forwarded as ${format} (${protocol})`, async () => {
          const client = echoClient(server, proxy, protocol);
          const res = await client.echo({ text: "hi" }, { headers: forwardingHeader(format, pki.alice) });
          expect(res.text).toBe("hi");
          expect(server.log.clientCommonNames.at(-1)).toBe("CN=alice");
          expect(server.events.at(-1)).toMatchObject({ kind: "admitted", source: "proxy" });
        });
        it(`refuses bob forwarded as ${format} (${protocol})`, async () => {
          const calls = server.log.calls.length;
          const client = echoClient(server, proxy, protocol);
          const error = await refusal(client.echo({ text: "hi" }, { headers: forwardingHeader(format, pki.bob) }));
          expectUnauthenticated(error, notAllowed);
          expect(server.log.calls.length).toBe(calls);
          expect(server.events.at(-1)).toMatchObject({ kind: "refused", reason: "not_allowed", source: "proxy" });
          expect(server.events.at(-1)?.thumbprint).toBe(sha256Of(pki.bob));
        });
      }
    }

    it("admits alice connecting directly with her own certificate (she is not a proxy)", async () => {
      const res = await echoClient(server, pki.alice).echo({ text: "direct" });
      expect(res.text).toBe("direct");
      expect(server.events.at(-1)).toMatchObject({ kind: "admitted", source: "tls" });
      expect(server.events.at(-1)?.ignoredForwardingHeaders).toBeUndefined();
    });
    it("refuses bob connecting directly with his own certificate", async () => {
      expectUnauthenticated(await refusal(echoClient(server, pki.bob).echo({ text: "direct" })), notAllowed);
    });

    it("refuses a trusted proxy that forwards no certificate (its own is not the client's)", async () => {
      const error = await refusal(echoClient(server, proxy).echo({ text: "hi" }));
      expectUnauthenticated(error, noCertificate);
      expect(server.events.at(-1)).toMatchObject({ reason: "no_certificate", source: "proxy" });
    });
    it("refuses a trusted proxy that forwards an empty header", async () => {
      const error = await refusal(
        echoClient(server, proxy).echo({ text: "hi" }, { headers: { "x-arr-clientcert": "" } }),
      );
      expectUnauthenticated(error, noCertificate);
    });

    it("refuses bob forging headers that claim alice from an untrusted peer, and reports them", async () => {
      const client = echoClient(server, pki.bob, "grpc");
      const headers = { ...forwardingHeader("xfcc", pki.alice), ...forwardingHeader("nginx", pki.alice) };
      const error = await refusal(client.echo({ text: "hi" }, { headers }));
      expectUnauthenticated(error, notAllowed);
      expect(server.events.at(-1)).toMatchObject({
        reason: "not_allowed",
        source: "tls",
        thumbprint: sha256Of(pki.bob),
        ignoredForwardingHeaders: ["x-forwarded-client-cert", "x-ssl-client-cert"],
      });
      await waitFor(() => warnings.some((w) => w.code === "CERTGATE_PROXY_UNTRUSTED"), "the untrusted-peer warning");
    });
    it("admits alice by her own certificate despite forged headers that claim bob, and reports them", async () => {
      const client = echoClient(server, pki.alice);
      const res = await client.echo({ text: "hi" }, { headers: forwardingHeader("aws-alb", pki.bob) });
      expect(res.text).toBe("hi");
      expect(server.log.clientCommonNames.at(-1)).toBe("CN=alice");
      expect(server.events.at(-1)).toMatchObject({
        kind: "admitted",
        source: "tls",
        ignoredForwardingHeaders: ["x-amzn-mtls-clientcert"],
      });
    });
    it("refuses a client without a certificate that forges alice's header", async () => {
      const error = await refusal(
        echoClient(server, undefined).echo(
          { text: "hi" },
          { headers: forwardingHeader("azure-app-service", pki.alice) },
        ),
      );
      expectUnauthenticated(error, noCertificate);
      expect(server.events.at(-1)?.ignoredForwardingHeaders).toEqual(["x-arr-clientcert"]);
    });

    it("admits the client of the nearest proxy's (last) XFCC element, after a forged one", async () => {
      const xfcc = `${xfccElement(pki.bob)},${xfccElement(pki.alice)}`;
      const res = await echoClient(server, proxy).echo(
        { text: "hi" },
        { headers: { "x-forwarded-client-cert": xfcc } },
      );
      expect(res.text).toBe("hi");
    });
    it("refuses the client of the nearest proxy's (last) XFCC element, despite a forged alice before it", async () => {
      const xfcc = `${xfccElement(pki.alice)},${xfccElement(pki.bob)}`;
      const error = await refusal(
        echoClient(server, proxy).echo({ text: "hi" }, { headers: { "x-forwarded-client-cert": xfcc } }),
      );
      expectUnauthenticated(error, notAllowed);
    });
    it("admits alice through two proxies: the last element names the trusted edge hop", async () => {
      const xfcc = `${xfccElement(pki.alice)},${xfccElement(edge)}`;
      const res = await echoClient(server, proxy).echo(
        { text: "hi" },
        { headers: { "x-forwarded-client-cert": xfcc } },
      );
      expect(res.text).toBe("hi");
      expect(server.log.clientCommonNames.at(-1)).toBe("CN=alice");
    });
    it("refuses to walk past a hop that is not a trusted proxy", async () => {
      const xfcc = `${xfccElement(pki.alice)},${xfccElement(pki.bob)},${xfccElement(edge)}`;
      const error = await refusal(
        echoClient(server, proxy).echo({ text: "hi" }, { headers: { "x-forwarded-client-cert": xfcc } }),
      );
      expectUnauthenticated(error, notAllowed);
      expect(server.events.at(-1)?.thumbprint).toBe(sha256Of(pki.bob));
    });
    it("refuses an XFCC element with only a Hash of alice's certificate", async () => {
      const xfcc = `By=spiffe://a;Hash=${hashOf(pki.alice)};Subject="CN=alice"`;
      const error = await refusal(
        echoClient(server, proxy).echo({ text: "hi" }, { headers: { "x-forwarded-client-cert": xfcc } }),
      );
      expectUnauthenticated(error, noCertificate);
    });
    it("refuses a malformed header from a trusted proxy (bad quoting)", async () => {
      const xfcc = `Cert="${urlPem(pki.alice.cert)}`;
      const error = await refusal(
        echoClient(server, proxy).echo({ text: "hi" }, { headers: { "x-forwarded-client-cert": xfcc } }),
      );
      expectUnauthenticated(error, unreadable);
      expect(error.message).not.toContain("quote");
    });
    it("refuses headers of two formats in one request", async () => {
      const headers = { ...forwardingHeader("xfcc", pki.alice), ...forwardingHeader("azure-app-service", pki.alice) };
      const error = await refusal(echoClient(server, proxy).echo({ text: "hi" }, { headers }));
      expectUnauthenticated(error, unreadable);
    });

    it("admits and refuses per request on one proxy connection (clients share it)", async () => {
      const client = echoClient(server, proxy);
      const call = (c: IssuedCertificate) => client.echo({ text: "x" }, { headers: forwardingHeader("xfcc", c) });
      expect((await call(pki.alice)).text).toBe("x");
      expectUnauthenticated(await refusal(call(pki.bob)), notAllowed);
      expect((await call(pki.alice)).text).toBe("x");
      expectUnauthenticated(await refusal(call(pki.bob)), notAllowed);
    });

    // A header sent twice: Node joins the two copies with ", ", which for
    // XFCC reads as two valid elements; it must be refused, not merged.
    const twice = () => [xfccElement(pki.alice), xfccElement(pki.alice)];
    it("admits a raw HTTP/1.1 request with the header once", async () => {
      const res = await rawHttp1(server, { "x-forwarded-client-cert": xfccElement(pki.alice) });
      expect(res.status).toBe(200);
      expect(JSON.parse(res.body)).toEqual({ text: "raw" });
    });
    it("refuses a raw HTTP/1.1 request with the header twice", async () => {
      const res = await rawHttp1(server, { "x-forwarded-client-cert": twice() });
      expect(res.status).toBe(401);
      expect(JSON.parse(res.body)).toMatchObject({ code: "unauthenticated", message: unreadable });
    });
    it("admits a raw HTTP/2 request with the header once", async () => {
      const res = await rawHttp2(server, { "x-forwarded-client-cert": xfccElement(pki.alice) });
      expect(res.status).toBe(200);
      expect(JSON.parse(res.body)).toEqual({ text: "raw" });
    });
    it("refuses a raw HTTP/2 request with the header twice", async () => {
      const res = await rawHttp2(server, { "x-forwarded-client-cert": twice() });
      expect(res.status).toBe(401);
      expect(JSON.parse(res.body)).toMatchObject({ code: "unauthenticated", message: unreadable });
    });
  });

  describe("behind a TLS-terminating proxy, over plaintext from 127.0.0.1", () => {
    let h2c: ProxyTestServer;
    let h1: ProxyTestServer;
    let untrusted: ProxyTestServer;
    beforeAll(async () => {
      h2c = await startServer({
        kind: "h2c",
        options: { trustedProxies: { cidrs: ["127.0.0.1/32"] }, formats: ["xfcc"] },
      });
      h1 = await startServer({
        kind: "http",
        options: { trustedProxies: { cidrs: ["127.0.0.1"] }, formats: ["nginx"], nginxHeader: "x-client-cert" },
      });
      untrusted = await startServer({
        kind: "h2c",
        options: { trustedProxies: { cidrs: ["10.0.0.0/8"] }, formats: ["xfcc"] },
      });
    });
    afterAll(async () => {
      await Promise.all([h2c.close(), h1.close(), untrusted.close()]);
    });
    const plaintextWarnings = () =>
      warnings.filter((w) => w.code === "CERTGATE_PLAINTEXT" || w.code === "CERTGATE_REQUESTCERT");

    for (const protocol of ["connect", "grpc"] as const) {
      it(`admits alice forwarded over h2c (${protocol}), without a misleading plaintext warning`, async () => {
        const res = await echoClient(h2c, undefined, protocol).echo(
          { text: "h2c" },
          { headers: forwardingHeader("xfcc", pki.alice) },
        );
        expect(res.text).toBe("h2c");
        expect(h2c.events.at(-1)).toMatchObject({ kind: "admitted", source: "proxy" });
        expect(plaintextWarnings()).toEqual([]);
      });
      it(`refuses bob forwarded over h2c (${protocol})`, async () => {
        const error = await refusal(
          echoClient(h2c, undefined, protocol).echo({ text: "h2c" }, { headers: forwardingHeader("xfcc", pki.bob) }),
        );
        expectUnauthenticated(error, notAllowed);
      });
    }
    it("admits alice forwarded by nginx over HTTP/1.1", async () => {
      const headers = { "x-client-cert": urlPem(pki.alice.cert) };
      const res = await echoClient(h1, undefined, "connect", "1.1").echo({ text: "h1" }, { headers });
      expect(res.text).toBe("h1");
      expect(plaintextWarnings()).toEqual([]);
    });
    it("refuses bob forwarded by nginx over HTTP/1.1", async () => {
      const headers = { "x-client-cert": urlPem(pki.bob.cert) };
      expectUnauthenticated(
        await refusal(echoClient(h1, undefined, "connect", "1.1").echo({ text: "h1" }, { headers })),
        notAllowed,
      );
    });
    it("admits alice forwarded over h2c to a request gate", async () => {
      const server = await startServer({
        kind: "h2c",
        gate: true,
        options: { trustedProxies: { cidrs: ["127.0.0.1/32"] }, formats: ["xfcc"] },
      });
      try {
        const res = await echoClient(server, undefined).echo(
          { text: "gate" },
          { headers: forwardingHeader("xfcc", pki.alice) },
        );
        expect(res.text).toBe("gate");
        expect(server.events.at(-1)).toMatchObject({ kind: "admitted", via: "gate", source: "proxy" });
      } finally {
        await server.close();
      }
    });
    it("refuses bob forwarded over h2c to a request gate, before the handler", async () => {
      const server = await startServer({
        kind: "h2c",
        gate: true,
        options: { trustedProxies: { cidrs: ["127.0.0.1/32"] }, formats: ["xfcc"] },
      });
      try {
        const error = await refusal(
          echoClient(server, undefined).echo({ text: "gate" }, { headers: forwardingHeader("xfcc", pki.bob) }),
        );
        expectUnauthenticated(error, notAllowed);
        expect(server.events.at(-1)).toMatchObject({ kind: "refused", via: "gate", source: "proxy" });
        expect(server.log.calls).toEqual([]);
      } finally {
        await server.close();
      }
    });
    it("refuses the proxy forwarding no certificate", async () => {
      expectUnauthenticated(await refusal(echoClient(h2c, undefined).echo({ text: "h2c" })), noCertificate);
    });
    it("refuses alice's header from a plaintext peer outside the trusted range, and reports it", async () => {
      const error = await refusal(
        echoClient(untrusted, undefined).echo({ text: "x" }, { headers: forwardingHeader("xfcc", pki.alice) }),
      );
      expectUnauthenticated(error, noCertificate);
      expect(untrusted.events.at(-1)).toMatchObject({
        source: "tls",
        ignoredForwardingHeaders: ["x-forwarded-client-cert"],
      });
      expect(untrusted.log.calls).toEqual([]);
      await waitFor(() => warnings.some((w) => w.code === "CERTGATE_PROXY_PLAINTEXT"), "the plaintext-peer warning");
    });
  });

  describe("trustedProxies.cidrs", () => {
    const servers: ProxyTestServer[] = [];
    afterAll(async () => {
      await Promise.all(servers.map((s) => s.close()));
    });
    // HTTP/1.1 for IPv6: connect-node 2.3.0 builds the request URL from an
    // HTTP/2 :authority that Node's client sends without brackets ("::1:port"),
    // and throws.
    async function start(host: string, connectHost: string, cidrs: string[]): Promise<ProxyTestServer> {
      const kind = connectHost.includes(":") ? "http" : "h2c";
      const server = await startServer({
        kind,
        host,
        connectHost,
        options: { trustedProxies: { cidrs }, formats: ["xfcc"] },
      });
      servers.push(server);
      return server;
    }
    const forward = (server: ProxyTestServer, c: IssuedCertificate) =>
      echoClient(server, undefined, "connect", server.url.includes("[") ? "1.1" : "2").echo(
        { text: "cidr" },
        { headers: forwardingHeader("xfcc", c) },
      );

    it("admits alice via 127.0.0.1/32 when the peer appears as ::ffff:127.0.0.1 (dual-stack server)", async () => {
      const server = await start("::", "127.0.0.1", ["127.0.0.1/32"]);
      expect((await forward(server, pki.alice)).text).toBe("cidr");
      expect(server.remoteAddresses.at(-1)).toBe("::ffff:127.0.0.1");
      expectUnauthenticated(await refusal(forward(server, pki.bob)), notAllowed);
    });
    it("refuses alice's header via ::ffff:127.0.0.1 when the range is 10.0.0.0/8", async () => {
      const server = await start("::", "127.0.0.1", ["10.0.0.0/8"]);
      expectUnauthenticated(await refusal(forward(server, pki.alice)), noCertificate);
      expect(server.remoteAddresses.at(-1)).toBe("::ffff:127.0.0.1");
    });
    it("admits alice via ::ffff:127.0.0.1/128 when the peer appears as 127.0.0.1", async () => {
      const server = await start("127.0.0.1", "127.0.0.1", ["::ffff:127.0.0.1/128"]);
      expect((await forward(server, pki.alice)).text).toBe("cidr");
      expect(server.remoteAddresses.at(-1)).toBe("127.0.0.1");
    });
    it("refuses alice's header via ::ffff:127.0.0.2/128 when the peer is 127.0.0.1", async () => {
      const server = await start("127.0.0.1", "127.0.0.1", ["::ffff:127.0.0.2/128"]);
      expectUnauthenticated(await refusal(forward(server, pki.alice)), noCertificate);
    });
    it.skipIf(!ipv6Loopback)("admits alice via ::1/128 over IPv6 loopback", async () => {
      const server = await start("::1", "::1", ["::1/128"]);
      expect((await forward(server, pki.alice)).text).toBe("cidr");
      expect(server.remoteAddresses.at(-1)).toBe("::1");
    });
    it.skipIf(!ipv6Loopback)("refuses alice's header via ::2/128 over IPv6 loopback", async () => {
      const server = await start("::1", "::1", ["::2/128"]);
      expectUnauthenticated(await refusal(forward(server, pki.alice)), noCertificate);
    });

    describe("over TLS, with a proxy that presents no certificate", () => {
      let server: ProxyTestServer;
      beforeAll(async () => {
        server = await startServer({
          kind: "tls",
          requestCert: false,
          options: { trustedProxies: { cidrs: ["127.0.0.0/8"] }, formats: ["azure-app-service"] },
        });
      });
      afterAll(() => server.close());
      it("admits alice forwarded by the proxy, without a requestCert warning", async () => {
        const res = await echoClient(server, undefined).echo(
          { text: "tls" },
          { headers: forwardingHeader("azure-app-service", pki.alice) },
        );
        expect(res.text).toBe("tls");
        expect(warnings.filter((w) => w.code === "CERTGATE_REQUESTCERT")).toEqual([]);
      });
      it("refuses bob forwarded by the proxy", async () => {
        const error = await refusal(
          echoClient(server, undefined).echo(
            { text: "tls" },
            { headers: forwardingHeader("azure-app-service", pki.bob) },
          ),
        );
        expectUnauthenticated(error, notAllowed);
      });
    });
  });

  describe("called directly", () => {
    const trusted = { remoteAddress: "127.0.0.1", encrypted: false };
    const untrustedSocket = { remoteAddress: "192.0.2.7", encrypted: false };
    const request = (
      socket: object,
      headers: Record<string, string | string[]>,
      rawHeaders?: string[],
    ): ForwardingRequestLike => ({
      socket,
      headers,
      rawHeaders:
        rawHeaders ??
        Object.entries(headers).flatMap(([k, v]) => (Array.isArray(v) ? v.flatMap((x) => [k, x]) : [k, v])),
    });
    const base: PeerCertificateContextValuesOptions = {
      trustedProxies: { cidrs: ["127.0.0.1/32"] },
      formats: ["xfcc", "nginx"],
      nginxHeader: "x-ssl-client-cert",
    };
    const peerOf = (options: PeerCertificateContextValuesOptions, req: ForwardingRequestLike): PeerCertificate => {
      const peer = createPeerCertificateContextValues(options)(req).get(peerCertificateKey);
      if (peer === undefined) throw new Error("no peer certificate in the context");
      return peer;
    };

    it("reuses one PeerCertificate per header value (the decision cache key)", () => {
      const contextValues = createPeerCertificateContextValues(base);
      const peer = (c: IssuedCertificate) =>
        contextValues(request({ ...trusted }, forwardingHeader("xfcc", c))).get(peerCertificateKey);
      const first = peer(pki.alice);
      expect(first?.certificate?.sha256).toBe(sha256Of(pki.alice));
      expect(peer(pki.alice)).toBe(first);
    });
    it("never reuses a PeerCertificate for another certificate, even once evicted", () => {
      const contextValues = createPeerCertificateContextValues({ ...base, cacheSize: 1 });
      const peer = (c: IssuedCertificate) =>
        contextValues(request(trusted, forwardingHeader("xfcc", c))).get(peerCertificateKey);
      const a1 = peer(pki.alice);
      const b = peer(pki.bob);
      const a2 = peer(pki.alice);
      expect(b).not.toBe(a1);
      expect(b?.certificate?.sha256).toBe(sha256Of(pki.bob));
      expect(a2?.certificate?.sha256).toBe(sha256Of(pki.alice));
      expect(a2).not.toBe(a1); // evicted by bob: parsed again, a new object
    });
    it("admits a returning client from the decision cache: one store look-up per header value", async () => {
      let lookups = 0;
      const pinned = createThumbprintStore(sha256Of(pki.alice));
      const store = {
        ...pinned,
        lookup: (...args: Parameters<typeof pinned.lookup>) => {
          lookups++;
          return pinned.lookup(...args);
        },
      };
      const decide = createDecide({ store });
      const contextValues = createPeerCertificateContextValues(base);
      const decisionFor = async (c: IssuedCertificate) =>
        (await decide(contextValues(request({ ...trusted }, forwardingHeader("xfcc", c))).get(peerCertificateKey)))
          .kind;
      expect(await decisionFor(pki.alice)).toBe("admitted");
      expect(await decisionFor(pki.alice)).toBe("admitted");
      expect(lookups).toBe(1);
      expect(await decisionFor(pki.bob)).toBe("refused");
      expect(lookups).toBe(2);
    });
    it("admits a header exactly maxHeaderLength long", () => {
      const headers = forwardingHeader("nginx", pki.alice);
      const length = (headers["x-ssl-client-cert"] as string).length;
      expect(peerOf({ ...base, maxHeaderLength: length }, request(trusted, headers)).certificate).toBeDefined();
    });
    it("refuses a header one character over maxHeaderLength, unread", () => {
      const headers = forwardingHeader("nginx", pki.alice);
      const length = (headers["x-ssl-client-cert"] as string).length;
      const peer = peerOf({ ...base, maxHeaderLength: length - 1 }, request(trusted, headers));
      expect(peer.certificate).toBeUndefined();
      expect(String(peer.error)).toMatch(/longer than/);
    });
    it("refuses a huge header by default (over 16 KiB)", () => {
      const peer = peerOf(base, request(trusted, { "x-forwarded-client-cert": `Subject="${"x".repeat(20_000)}"` }));
      expect(peer.certificate).toBeUndefined();
      expect(String(peer.error)).toMatch(/longer than 16384/);
    });
    it("refuses a header sent twice that Node joined (rawHeaders has both)", () => {
      const value = xfccElement(pki.alice);
      const req = request(trusted, { "x-forwarded-client-cert": `${value}, ${value}` }, [
        "X-Forwarded-Client-Cert",
        value,
        "x-forwarded-client-cert",
        value,
      ]);
      const peer = peerOf(base, req);
      expect(peer.certificate).toBeUndefined();
      expect(String(peer.error)).toMatch(/more than once/);
    });
    it("refuses a header given as an array", () => {
      const value = urlPem(pki.alice.cert);
      const peer = peerOf(base, { socket: trusted, headers: { "x-ssl-client-cert": [value, value] } });
      expect(peer.certificate).toBeUndefined();
      expect(String(peer.error)).toMatch(/more than once/);
    });
    it("admits the same header once when rawHeaders is not available", () => {
      const peer = peerOf(base, { socket: trusted, headers: forwardingHeader("nginx", pki.alice) });
      expect(peer.certificate?.sha256).toBe(sha256Of(pki.alice));
    });
    it("refuses forwarding headers from an untrusted peer: ignored, and marked as such", () => {
      const peer = peerOf(base, request(untrustedSocket, forwardingHeader("xfcc", pki.alice)));
      expect(peer.certificate).toBeUndefined();
      expect(peer.source).toBeUndefined();
      expect(peer.ignoredForwardingHeaders).toEqual(["x-forwarded-client-cert"]);
    });
    it("refuses a request whose connection cannot be read, without throwing", () => {
      const socket = Object.defineProperty({}, "remoteAddress", {
        get() {
          throw new Error("socket gone");
        },
      });
      const peer = peerOf(base, request(socket, forwardingHeader("xfcc", pki.alice)));
      expect(peer.certificate).toBeUndefined();
      expect(peer.error).toBeInstanceOf(Error);
    });

    const mistakes: [string, unknown, RegExp][] = [
      ["no options", undefined, /needs options/],
      ["no trustedProxies", { formats: ["xfcc"] }, /trustedProxies is required/],
      ["trustedProxies naming nobody", { trustedProxies: {}, formats: ["xfcc"] }, /names no proxy/],
      [
        "a malformed CIDR",
        { trustedProxies: { cidrs: ["10.0.0.0/8", "10.0.0/8"] }, formats: ["xfcc"] },
        /trustedProxies\.cidrs: invalid CIDR "10\.0\.0\/8"/,
      ],
      [
        "a CIDR with host bits",
        { trustedProxies: { cidrs: ["192.168.1.10/24"] }, formats: ["xfcc"] },
        /"192\.168\.1\.10\/24": host bits/,
      ],
      [
        "a CIDR matching everyone",
        { trustedProxies: { cidrs: ["0.0.0.0/0"] }, formats: ["xfcc"] },
        /every address.*anyAddress/,
      ],
      [
        "a malformed thumbprint",
        { trustedProxies: { thumbprints: ["AB:CD"] }, formats: ["xfcc"] },
        /trustedProxies\.thumbprints: invalid thumbprint "AB:CD"/,
      ],
      [
        "cidrs that are not an array",
        { trustedProxies: { cidrs: "127.0.0.1/32" }, formats: ["xfcc"] },
        /cidrs must be an array/,
      ],
      ["no formats", { trustedProxies: { cidrs: ["127.0.0.1"] } }, /formats is required/],
      ["empty formats", { trustedProxies: { cidrs: ["127.0.0.1"] }, formats: [] }, /formats is required/],
      [
        "an unknown format",
        { trustedProxies: { cidrs: ["127.0.0.1"] }, formats: ["traefik"] },
        /unknown forwarding format "traefik"/,
      ],
      [
        "nginx without nginxHeader",
        { trustedProxies: { cidrs: ["127.0.0.1"] }, formats: ["nginx"] },
        /needs nginxHeader/,
      ],
      [
        "a bad nginxHeader",
        { trustedProxies: { cidrs: ["127.0.0.1"] }, formats: ["nginx"], nginxHeader: "x ssl" },
        /needs nginxHeader/,
      ],
      [
        "nginxHeader without nginx",
        { trustedProxies: { cidrs: ["127.0.0.1"] }, formats: ["xfcc"], nginxHeader: "x-ssl" },
        /does not include "nginx"/,
      ],
      [
        "nginxHeader naming another format's header",
        {
          trustedProxies: { cidrs: ["127.0.0.1"] },
          formats: ["xfcc", "nginx"],
          nginxHeader: "X-Forwarded-Client-Cert",
        },
        /header of another format/,
      ],
      ["a bad maxHeaderLength", { ...base, maxHeaderLength: 0 }, /maxHeaderLength must be an integer/],
      ["a bad cacheSize", { ...base, cacheSize: 1.5 }, /cacheSize must be an integer/],
    ];
    for (const [what, options, message] of mistakes) {
      it(`throws at creation for ${what}, naming it`, () => {
        expect(() => createPeerCertificateContextValues(options as PeerCertificateContextValuesOptions)).toThrow(
          message,
        );
      });
    }
    it("admits anyAddress: true as the explicit way to trust every peer", () => {
      const peer = peerOf(
        { trustedProxies: { anyAddress: true }, formats: ["xfcc"] },
        request(untrustedSocket, forwardingHeader("xfcc", pki.alice)),
      );
      expect(peer.certificate?.sha256).toBe(sha256Of(pki.alice));
    });
  });
});

// ---------------------------------------------------------------------------
// Raw clients, for what connect-node cannot send: a header twice.

interface RawResponse {
  status: number;
  body: string;
}

const rawBody = JSON.stringify({ text: "raw" });

function rawHttp1(server: ProxyTestServer, headers: Record<string, string | string[]>): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const url = new URL(server.url);
    const req = https.request(
      {
        host: url.hostname,
        port: url.port,
        method: "POST",
        path: echoPath,
        ca: pki.ca.cert,
        cert: proxy.cert,
        key: proxy.key,
        agent: false,
        headers: { "content-type": "application/json", ...headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(rawBody);
  });
}

async function rawHttp2(server: ProxyTestServer, headers: Record<string, string | string[]>): Promise<RawResponse> {
  const session = http2.connect(server.url, { ca: pki.ca.cert, cert: proxy.cert, key: proxy.key });
  try {
    return await new Promise<RawResponse>((resolve, reject) => {
      session.on("error", reject);
      const stream = session.request({
        ":method": "POST",
        ":path": echoPath,
        "content-type": "application/json",
        ...headers,
      });
      let status = 0;
      const chunks: Buffer[] = [];
      stream.on("response", (h) => (status = Number(h[":status"])));
      stream.on("data", (c: Buffer) => chunks.push(c));
      stream.on("end", () => resolve({ status, body: Buffer.concat(chunks).toString() }));
      stream.on("error", reject);
      stream.end(rawBody);
    });
  } finally {
    await new Promise<void>((resolve) => session.close(() => resolve()));
  }
}
