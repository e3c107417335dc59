// A flood of refused calls on one HTTP/2 connection, as a client without
// credentials sends it: raw streams that send a message and never end their
// side. Each refused stream must end (RST_STREAM NO_ERROR after the status),
// nothing more of its body may be read, and the connection gets GOAWAY after
// maxRefusedCallsPerConnection refusals. Open streams are counted, not timed.
import * as http2 from "node:http2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseCertificate } from "../../src/index.js";
import {
  createClientCertServerInterceptor,
  createThumbprintStore,
  type ClientCertServerInterceptorOptions,
} from "../../src/grpc-js/index.js";
import { createTestPki, echoPath, waitFor, type TestPki } from "../support/harness.js";
import { openFloodSession, type FloodSession, type RawGrpcStream } from "../support/h2-grpc-flood.js";
import { startGrpcJsEchoServer, type GrpcJsEchoServer } from "../support/grpc-js-echo-server.js";

const streamPath = "/certgate.example.v1.EchoService/EchoServerStream";
const { NGHTTP2_NO_ERROR } = http2.constants;

let pki: TestPki;
beforeAll(async () => {
  pki = await createTestPki();
});

const servers: GrpcJsEchoServer[] = [];
const sessions: FloodSession[] = [];
afterAll(async () => {
  await Promise.all(sessions.map((s) => s.close()));
  await Promise.all(servers.map((s) => s.close()));
});

// Alice is pinned; Echo is open to anyone, EchoServerStream is checked: on
// one connection, bob (or a client without a certificate) makes admitted
// Echo calls between refused EchoServerStream calls.
async function serve(options: Partial<ClientCertServerInterceptorOptions> = {}): Promise<GrpcJsEchoServer> {
  const server = await startGrpcJsEchoServer({
    pki,
    interceptors: [
      createClientCertServerInterceptor({
        store: createThumbprintStore(parseCertificate(pki.alice.cert).sha256),
        rules: [{ procedure: echoPath, allow: "any" }],
        ...options,
      }),
    ],
  });
  servers.push(server);
  return server;
}

function open(server: GrpcJsEchoServer, who: "bob" | "none" | "alice"): FloodSession {
  const credentials = who === "none" ? {} : { cert: pki[who].cert, key: pki[who].key };
  const session = openFloodSession(server.port, { ca: pki.ca.cert, ...credentials });
  sessions.push(session);
  return session;
}

function expectRefusedAndReset(streams: RawGrpcStream[]): void {
  for (const s of streams) {
    expect(s).toMatchObject({ grpcStatus: "16", closed: true, rstCode: NGHTTP2_NO_ERROR, ended: false });
  }
}

describe("createClientCertServerInterceptor() under a flood of refused streams", () => {
  for (const who of ["none", "bob"] as const) {
    it(`ends every refused stream with RST_STREAM NO_ERROR after the status, and admits calls between them (${who === "none" ? "no certificate" : "an unknown certificate"})`, async () => {
      const server = await serve({ maxRefusedCallsPerConnection: Infinity });
      const session = open(server, who);
      const refused: RawGrpcStream[] = [];
      const admitted: RawGrpcStream[] = [];
      for (let round = 0; round < 20; round++) {
        for (let i = 0; i < 50; i++) refused.push(session.call(streamPath));
        admitted.push(session.call(echoPath, { text: `hi ${round}`, end: true }));
        await waitFor(() => refused.every((s) => s.closed) && admitted.every((s) => s.closed), "streams to close");
      }
      // 1,000 refused streams the client never ended: none is left open.
      expect(session.open()).toBe(0);
      expectRefusedAndReset(refused);
      for (const s of admitted) expect(s.grpcStatus).toBe("0");
      expect(server.log.messages).toHaveLength(20);
      expect(session.goaways()).toBe(0);
    });
  }

  it("sends GOAWAY after maxRefusedCallsPerConnection refused calls (by default 100), letting admitted calls in flight finish", async () => {
    const server = await serve();
    const session = open(server, "none");
    const refused: RawGrpcStream[] = [];
    for (let i = 0; i < 99; i++) refused.push(session.call(streamPath));
    await waitFor(() => refused.every((s) => s.closed), "99 refused streams to close");
    expect(session.goaways()).toBe(0);
    const admitted = session.call(echoPath, { text: "still here", end: true });
    await waitFor(() => admitted.closed, "the admitted call");
    expect(admitted.grpcStatus).toBe("0");
    refused.push(session.call(streamPath));
    await waitFor(() => session.goaways() === 1 && session.session.closed, "GOAWAY");
    expectRefusedAndReset(refused);
    // A new connection is served as before.
    const next = open(server, "none");
    const again = next.call(echoPath, { text: "new connection", end: true });
    await waitFor(() => again.closed, "a call on a new connection");
    expect(again.grpcStatus).toBe("0");
  });

  it("never sends GOAWAY to an admitted client, however many calls it makes", async () => {
    const server = await serve({ maxRefusedCallsPerConnection: 5 });
    const session = open(server, "alice");
    const calls: RawGrpcStream[] = [];
    for (let i = 0; i < 20; i++) calls.push(session.call(echoPath, { text: `n${i}`, end: true }));
    await waitFor(() => calls.every((s) => s.closed), "admitted calls");
    for (const s of calls) expect(s.grpcStatus).toBe("0");
    expect(session.goaways()).toBe(0);
  });

  it("never sends GOAWAY to a trusted proxy's connection, which carries other clients, but still resets refused streams", async () => {
    const server = await serve({
      maxRefusedCallsPerConnection: 3,
      forwardedCertificates: { trustedProxies: { cidrs: ["127.0.0.1/32"] }, formats: ["xfcc"] },
    });
    const session = open(server, "none");
    const refused: RawGrpcStream[] = [];
    // Forwarded calls without a certificate, and one forwarding bob's.
    for (let i = 0; i < 10; i++) refused.push(session.call(streamPath));
    const bob = `Cert="${encodeURIComponent(pki.bob.cert)}"`;
    refused.push(session.call(streamPath, { headers: { "x-forwarded-client-cert": bob } }));
    await waitFor(() => refused.every((s) => s.closed), "refused streams to close");
    expectRefusedAndReset(refused);
    const admitted = session.call(echoPath, { text: "open", end: true });
    await waitFor(() => admitted.closed, "an admitted call");
    expect(admitted.grpcStatus).toBe("0");
    expect(session.goaways()).toBe(0);
  });

  for (const who of ["none", "bob"] as const) {
    it(`stops a refused upload after a flow-control window, not after the body (${who === "none" ? "no certificate" : "an unknown certificate"})`, async () => {
      const server = await serve({ maxRefusedCallsPerConnection: Infinity });
      const session = open(server, who);
      const total = 64 * 1024 * 1024;
      const upload = session.upload(streamPath, total);
      await waitFor(() => upload.closed, "the refused upload to end", 30_000);
      expect(upload).toMatchObject({ grpcStatus: "16", rstCode: NGHTTP2_NO_ERROR, ended: false });
      // The server grants a stream it does not read one window (64 KiB);
      // 1 MiB leaves room for the client's own buffers.
      expect(upload.sent).toBeLessThan(1024 * 1024);
      const admitted = session.call(echoPath, { text: "after", end: true });
      await waitFor(() => admitted.closed, "an admitted call on the same connection");
      expect(admitted.grpcStatus).toBe("0");
    });
  }
});
