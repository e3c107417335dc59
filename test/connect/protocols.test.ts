import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Code, createClient } from "@connectrpc/connect";
import type { ServiceError } from "@grpc/grpc-js";
import { EchoService } from "../../src/gen/certgate/example/v1/echo_pb.js";
import {
  createClientCertGate,
  createClientCertInterceptor,
  createThumbprintStore,
  type ClientCertOptions,
} from "../../src/index.js";
import { createGrpcJsEchoClient, type GrpcJsEchoClient } from "../support/grpc-js-client.js";
import {
  certificateOf,
  connectErrorOf,
  createTestPki,
  openTransport,
  startEchoServer,
  startOtherEchoServer,
  type OpenTransport,
  type OtherEchoServer,
  type Protocol,
  type TestPki,
  type TestServer,
} from "../support/harness.js";

let pki: TestPki;
const servers: (TestServer | OtherEchoServer)[] = [];
const transports: OpenTransport[] = [];
const grpcJsClients: GrpcJsEchoClient[] = [];

beforeAll(async () => {
  pki = await createTestPki();
});
afterEach(() => {
  for (const t of transports.splice(0)) t.close();
  for (const c of grpcJsClients.splice(0)) c.close();
});
afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

const options = (): ClientCertOptions => ({ store: createThumbprintStore(certificateOf(pki.alice).sha1) });

for (const via of ["interceptor", "gate"] as const) {
  const guard = () =>
    via === "gate"
      ? { requestGate: createClientCertGate(options()) }
      : { interceptors: [createClientCertInterceptor(options())] };

  describe(`${via === "gate" ? "createClientCertGate()" : "createClientCertInterceptor()"} over every protocol`, () => {
    let server: TestServer;
    let https: OtherEchoServer;
    beforeAll(async () => {
      server = await startEchoServer({ pki, ...guard() });
      https = await startOtherEchoServer({ kind: "https", pki, ...guard() });
      servers.push(server, https);
    });
    afterEach(() => {
      server.log.calls.length = 0;
      https.log.calls.length = 0;
    });

    const cases: [Protocol, "1.1" | "2", string][] = [
      ["connect", "2", "http2.createSecureServer"],
      ["grpc", "2", "http2.createSecureServer"],
      ["grpc-web", "2", "http2.createSecureServer"],
      ["connect", "1.1", "http2.createSecureServer with allowHTTP1"],
      ["grpc-web", "1.1", "http2.createSecureServer with allowHTTP1"],
      ["connect", "1.1", "https.createServer"],
      ["grpc-web", "1.1", "https.createServer"],
    ];
    for (const [protocol, httpVersion, kind] of cases) {
      const target = () => (kind === "https.createServer" ? https : server);
      const over = `${protocol} over HTTP/${httpVersion} on ${kind}`;

      it(`admits the pinned certificate, unary and streaming (${over})`, async () => {
        const t = openTransport(target(), pki, pki.alice, protocol, httpVersion);
        transports.push(t);
        const c = createClient(EchoService, t.transport);
        expect((await c.echo({ text: "hi" })).text).toBe("hi");
        const texts: string[] = [];
        for await (const r of c.echoServerStream({ text: "s", count: 2 })) texts.push(r.text);
        expect(texts).toEqual(["s", "s"]);
        expect(target().log.calls).toEqual(["echo", "echoServerStream"]);
        expect(target().log.clientCommonNames).toContain("CN=alice");
      });

      it(`refuses another certificate and none, unary and streaming (${over})`, async () => {
        for (const [cert, message] of [
          [pki.bob, "client certificate not allowed"],
          [undefined, "no client certificate presented"],
        ] as const) {
          const t = openTransport(target(), pki, cert, protocol, httpVersion);
          transports.push(t);
          const c = createClient(EchoService, t.transport);
          const unary = await connectErrorOf(c.echo({ text: "hi" }));
          const stream = await connectErrorOf(
            (async () => {
              for await (const r of c.echoServerStream({ text: "s", count: 2 })) void r;
            })(),
          );
          for (const error of [unary, stream]) {
            expect(error.code).toBe(Code.Unauthenticated);
            expect(error.rawMessage).toBe(message);
          }
        }
        expect(target().log.calls).toEqual([]);
      });
    }

    // The one streaming suite, over both adapters.
    for (const protocol of ["connect", "grpc"] as const) {
      describe(`streaming over ${protocol}`, () => {
        const streamingClient = (cert: typeof pki.alice | undefined) => {
          const t = openTransport(server, pki, cert, protocol, "2");
          transports.push(t);
          return createClient(EchoService, t.transport);
        };

        it("admits server-streaming and client-streaming calls, giving handlers the certificate", async () => {
          const c = streamingClient(pki.alice);
          const texts: string[] = [];
          for await (const r of c.echoServerStream({ text: "s", count: 3 })) texts.push(r.text);
          expect(texts).toEqual(["s", "s", "s"]);
          expect((await c.echoClientStream(toIterable(["a", "b"]))).text).toBe("ab");
          expect(server.log.calls).toEqual(["echoServerStream", "echoClientStream"]);
          expect(server.log.clientCommonNames).toContain("CN=alice");
        });

        it("refuses server-streaming and client-streaming calls before the handler runs", async () => {
          for (const [cert, message] of [
            [pki.bob, "client certificate not allowed"],
            [undefined, "no client certificate presented"],
          ] as const) {
            const c = streamingClient(cert);
            const errors = await Promise.all([
              connectErrorOf(
                (async () => {
                  for await (const r of c.echoServerStream({ text: "s", count: 3 })) void r;
                })(),
              ),
              connectErrorOf(c.echoClientStream(toIterable(["a", "b"]))),
            ]);
            for (const error of errors) {
              expect(error.code).toBe(Code.Unauthenticated);
              expect(error.rawMessage).toBe(message);
            }
          }
          expect(server.log.calls).toEqual([]);
        });
      });
    }

    describe("with @grpc/grpc-js as the client", () => {
      function grpcJs(cert: typeof pki.alice | undefined) {
        const client = createGrpcJsEchoClient(server.port, {
          ca: pki.ca.cert,
          ...(cert === undefined ? {} : { cert: cert.cert, key: cert.key }),
        });
        grpcJsClients.push(client);
        return client;
      }
      async function serviceError(call: Promise<unknown>): Promise<ServiceError> {
        try {
          await call;
        } catch (error) {
          return error as ServiceError;
        }
        throw new Error("expected the grpc-js call to fail");
      }

      it("admits the pinned certificate for unary, server- and client-streaming calls", async () => {
        const c = grpcJs(pki.alice);
        expect(await c.echo("hi")).toBe("hi");
        expect(await c.echoServerStream("s", 3)).toEqual(["s", "s", "s"]);
        expect(await c.echoClientStream(["a", "b", "c"])).toBe("abc");
        expect(server.log.calls).toEqual(["echo", "echoServerStream", "echoClientStream"]);
      });

      it("refuses another certificate and none with status 16 before any handler runs", async () => {
        for (const [cert, message] of [
          [pki.bob, "client certificate not allowed"],
          [undefined, "no client certificate presented"],
        ] as const) {
          const c = grpcJs(cert);
          const errors = await Promise.all(
            [c.echo("hi"), c.echoServerStream("s", 3), c.echoClientStream(["a", "b"])].map(serviceError),
          );
          for (const error of errors) {
            expect(error.code).toBe(16);
            expect(error.details).toBe(message);
          }
        }
        expect(server.log.calls).toEqual([]);
      });
    });
  });
}

async function* toIterable(texts: string[]) {
  for (const text of texts) yield { text };
}
