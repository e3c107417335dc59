import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Code, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { EchoService } from "../../src/gen/certgate/example/v1/echo_pb.js";
import { createClientCertGate, createClientCertInterceptor, createThumbprintStore } from "../../src/index.js";
import {
  captureWarnings,
  certificateOf,
  connectErrorOf,
  createTestPki,
  openTransport,
  startEchoServer,
  startOtherEchoServer,
  type OpenTransport,
  type OtherEchoServer,
  type TestPki,
  type TestServer,
} from "../support/harness.js";

// A server set up so that no call can ever be admitted gets every call
// refused and one clear process warning (per mistake, per process), not
// silence. Warnings are once per process, so this file keeps them to itself
// and its tests run in order.

let pki: TestPki;
let warnings: ReturnType<typeof captureWarnings>;
const certgateWarnings = () => warnings.warnings.filter((w) => w.code?.startsWith("CERTGATE_"));
const servers: (TestServer | OtherEchoServer)[] = [];
const transports: OpenTransport[] = [];
const sessionManagers: Http2SessionManager[] = [];

beforeAll(async () => {
  pki = await createTestPki();
  warnings = captureWarnings();
});
afterEach(() => {
  for (const t of transports.splice(0)) t.close();
  for (const m of sessionManagers.splice(0)) m.abort();
});
afterAll(async () => {
  warnings.stop();
  await Promise.all(servers.map((s) => s.close()));
});

const certgate = () => ({
  store: createThumbprintStore(certificateOf(pki.alice).sha256),
});

/** Lets a warning emitted during the last call reach its listeners. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

describe("set-up mistakes", () => {
  it("admits on a correct server without any warning", async () => {
    const server = await startEchoServer({ pki, interceptors: [createClientCertInterceptor(certgate())] });
    servers.push(server);
    const t = openTransport(server, pki, pki.alice);
    transports.push(t);
    expect((await createClient(EchoService, t.transport).echo({ text: "ok" })).text).toBe("ok");
    await settle();
    expect(certgateWarnings()).toEqual([]);
  });

  it("refuses every call on a server without requestCert: true, with exactly one warning", async () => {
    const server = await startEchoServer({
      pki,
      requestCert: false,
      interceptors: [createClientCertInterceptor(certgate())],
    });
    servers.push(server);
    for (const protocol of ["connect", "grpc", "connect", "grpc-web"] as const) {
      // A new connection each time: the check must not warn per connection.
      const t = openTransport(server, pki, pki.alice, protocol);
      transports.push(t);
      const client = createClient(EchoService, t.transport);
      for (let i = 0; i < 2; i++) {
        const error = await connectErrorOf(client.echo({ text: "x" }));
        expect(error.code).toBe(Code.Unauthenticated);
        expect(error.rawMessage).toBe("no client certificate presented");
      }
    }
    expect(server.log.calls).toEqual([]);
    await settle();
    expect(certgateWarnings().map((w) => w.code)).toEqual(["CERTGATE_REQUESTCERT"]);
    expect(certgateWarnings()[0]?.message).toContain("requestCert: true");
  });

  it("refuses every call on a plaintext server (h2c and HTTP/1.1), with exactly one warning", async () => {
    const h2c = await startOtherEchoServer({ kind: "h2c", interceptors: [createClientCertInterceptor(certgate())] });
    const http = await startOtherEchoServer({ kind: "http", requestGate: createClientCertGate(certgate()) });
    servers.push(h2c, http);
    const manager = new Http2SessionManager(h2c.url);
    sessionManagers.push(manager);
    const clients = [
      createClient(
        EchoService,
        createConnectTransport({ baseUrl: h2c.url, httpVersion: "2", sessionManager: manager }),
      ),
      createClient(EchoService, createGrpcTransport({ baseUrl: h2c.url, sessionManager: manager })),
      createClient(EchoService, createConnectTransport({ baseUrl: http.url, httpVersion: "1.1" })),
    ];
    for (const client of clients) {
      const error = await connectErrorOf(client.echo({ text: "x" }));
      expect(error.code).toBe(Code.Unauthenticated);
      expect(error.rawMessage).toBe("no client certificate presented");
    }
    expect([...h2c.log.calls, ...http.log.calls]).toEqual([]);
    await settle();
    expect(certgateWarnings().map((w) => w.code)).toEqual(["CERTGATE_REQUESTCERT", "CERTGATE_PLAINTEXT"]);
  });

  it("refuses every call when the adapter lacks contextValues, with exactly one warning", async () => {
    const gate = await startEchoServer({ pki, contextValues: false, requestGate: createClientCertGate(certgate()) });
    const interceptor = await startEchoServer({
      pki,
      contextValues: false,
      interceptors: [createClientCertInterceptor(certgate())],
    });
    servers.push(gate, interceptor);
    for (const server of [gate, interceptor]) {
      for (const protocol of ["connect", "grpc"] as const) {
        const t = openTransport(server, pki, pki.alice, protocol);
        transports.push(t);
        const error = await connectErrorOf(createClient(EchoService, t.transport).echo({ text: "x" }));
        expect(error.code).toBe(Code.Unauthenticated);
        expect(error.rawMessage).toBe("no client certificate presented");
      }
    }
    expect([...gate.log.calls, ...interceptor.log.calls]).toEqual([]);
    await settle();
    expect(certgateWarnings().map((w) => w.code)).toEqual([
      "CERTGATE_REQUESTCERT",
      "CERTGATE_PLAINTEXT",
      "CERTGATE_CONTEXT",
    ]);
    expect(certgateWarnings()[2]?.message).toContain("peerCertificateContextValues");
  });
});
