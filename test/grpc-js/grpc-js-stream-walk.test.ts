// Other interceptors between certgate's and grpc-js's own call: certgate
// walks their calls to the HTTP/2 stream, and a `stream` field of their own
// (any object that is not an HTTP/2 server stream) neither ends the walk nor
// passes for the connection.
import { PassThrough } from "node:stream";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseCertificate } from "../../src/index.js";
import { createClientCertServerInterceptor, createThumbprintStore } from "../../src/grpc-js/index.js";
import { captureWarnings, createTestPki, waitFor, type TestPki } from "../support/harness.js";
import { callEcho, refusalOf } from "../support/grpc-js-calls.js";
import { createBidiClient, startGrpcJsEchoServer, type GrpcJsEchoServer } from "../support/grpc-js-echo-server.js";

let pki: TestPki;
beforeAll(async () => {
  pki = await createTestPki();
});
const servers: GrpcJsEchoServer[] = [];
const clients: grpc.Client[] = [];
afterAll(async () => {
  for (const c of clients) c.close();
  await Promise.all(servers.map((s) => s.close()));
});

async function serveBehind(own: grpc.ServerInterceptor): Promise<GrpcJsEchoServer> {
  const server = await startGrpcJsEchoServer({
    pki,
    interceptors: [
      own,
      createClientCertServerInterceptor({ store: createThumbprintStore(parseCertificate(pki.alice.cert).sha256) }),
    ],
  });
  servers.push(server);
  return server;
}

function client(server: GrpcJsEchoServer, who: "alice" | "bob") {
  const c = createBidiClient(server.port, { ca: pki.ca.cert, cert: pki[who].cert, key: pki[who].key });
  clients.push(c);
  return c;
}

// A logging interceptor that keeps a stream of its own on its call.
class LoggingCall extends grpc.ServerInterceptingCall {
  readonly stream = new PassThrough();
}

describe("createClientCertServerInterceptor() behind other interceptors", () => {
  it("walks past another call's own stream field to the connection: admits alice, refuses bob", async () => {
    const warnings = captureWarnings();
    const server = await serveBehind((_method, call) => new LoggingCall(call));
    expect(await callEcho(client(server, "alice"), "unary", "hi")).toBe("hi CN=alice");
    expect((await refusalOf(callEcho(client(server, "bob"), "unary", "hi"))).reason).toBe("not_allowed");
    warnings.stop();
    expect(warnings.warnings.map((w) => w.code).filter((c) => c?.startsWith("CERTGATE"))).toEqual([]);
  });

  it("refuses, warning that the stream cannot be reached (not of plaintext), a call that hides grpc-js's own", async () => {
    const warnings = captureWarnings();
    // A call of the user's making, with a stream of its own and its inner call kept private.
    const server = await serveBehind((_method, inner) => {
      const call = new LoggingCall(inner);
      return new Proxy(call, {
        get(target, name) {
          if (name === "nextCall") return undefined;
          const value = Reflect.get(target, name, target);
          return typeof value === "function" ? value.bind(target) : value;
        },
      });
    });
    const seen = await refusalOf(callEcho(client(server, "alice"), "unary", "hi"));
    expect(seen).toMatchObject({ code: 16, reason: "invalid_certificate" });
    await waitFor(() => warnings.warnings.some((w) => w.code === "CERTGATE_GRPC_JS_STREAM"), "the warning");
    warnings.stop();
    expect(warnings.warnings.map((w) => w.code)).not.toContain("CERTGATE_PLAINTEXT");
    expect(server.log.messages).toEqual([]);
  });
});
