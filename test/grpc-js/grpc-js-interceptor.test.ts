import { mkdtemp, rm, writeFile, unlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createDirectoryStore, parseCertificate, type DecisionEvent } from "../../src/index.js";
import {
  clientCertificateOf,
  createClientCertServerInterceptor,
  createServerCredentials,
  createThumbprintStore,
  type ClientCertServerInterceptorOptions,
} from "../../src/grpc-js/index.js";
import { createDevCa, type IssuedCertificate } from "../../src/dev-certificates.js";
import { createTestPki, issueOutOfWindowCertificates, waitFor, type TestPki } from "../support/harness.js";
import { callEcho, callKinds, refusalOf } from "../support/grpc-js-calls.js";
import {
  createBidiClient,
  echoBidiPath,
  startGrpcJsEchoServer,
  type EchoBidiRawClient,
  type GrpcJsEchoServer,
} from "../support/grpc-js-echo-server.js";

let pki: TestPki;
let expired: IssuedCertificate;
let selfSigned: IssuedCertificate;
let otherSelfSigned: IssuedCertificate;
beforeAll(async () => {
  pki = await createTestPki();
  expired = (await issueOutOfWindowCertificates(pki)).expired;
  selfSigned = await createDevCa({ commonName: "self-signed pinned" });
  otherSelfSigned = await createDevCa({ commonName: "self-signed not pinned" });
});

const servers: GrpcJsEchoServer[] = [];
const clients: grpc.Client[] = [];
afterEach(() => {
  for (const c of clients.splice(0)) c.close();
});
afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

async function serve(options: ClientCertServerInterceptorOptions): Promise<GrpcJsEchoServer> {
  const server = await startGrpcJsEchoServer({ pki, interceptors: [createClientCertServerInterceptor(options)] });
  servers.push(server);
  return server;
}

function connect(server: GrpcJsEchoServer, client: IssuedCertificate | undefined): EchoBidiRawClient {
  const c = createBidiClient(
    server.port,
    client === undefined ? { ca: pki.ca.cert } : { ca: pki.ca.cert, cert: client.cert, key: client.key },
  );
  clients.push(c);
  return c;
}

const sha256 = (c: IssuedCertificate) => parseCertificate(c.cert).sha256;
const procedureOf = {
  unary: "Echo",
  "server-streaming": "EchoServerStream",
  "client-streaming": "EchoClientStream",
  bidi: "EchoBidi",
} as const;

describe("createClientCertServerInterceptor()", () => {
  for (const kind of callKinds) {
    it(`admits a pinned certificate and gives it to the handler (${kind})`, async () => {
      const server = await serve({ store: createThumbprintStore([sha256(pki.alice), sha256(selfSigned)]) });
      const text = await callEcho(connect(server, pki.alice), kind, "hi");
      expect(text).toContain("hi CN=alice");
      expect(server.log.certificates.map((c) => c?.sha256)).toEqual([sha256(pki.alice)]);
      expect(await callEcho(connect(server, selfSigned), kind, "hi")).toContain("CN=self-signed pinned");
    });

    it(`refuses other, missing, expired and unpinned self-signed certificates with 16 and the detail, before the handler (${kind})`, async () => {
      const server = await serve({
        store: createThumbprintStore([sha256(pki.alice), sha256(selfSigned), sha256(expired)]),
      });
      const procedure = `/certgate.example.v1.EchoService/${procedureOf[kind]}`;
      const cases: [IssuedCertificate | undefined, string, string][] = [
        [pki.bob, "not_allowed", "client certificate not allowed"],
        [undefined, "no_certificate", "no client certificate presented"],
        [expired, "expired", "client certificate expired"],
        [otherSelfSigned, "not_allowed", "client certificate not allowed"],
      ];
      for (const [client, reason, message] of cases) {
        const seen = await refusalOf(callEcho(connect(server, client), kind, "secret"));
        expect(seen).toEqual({
          code: grpc.status.UNAUTHENTICATED,
          details: message,
          reason,
          procedure,
          statusCode: 16,
        });
      }
      expect(server.log.messages).toEqual([]);
      expect(server.log.certificates).toEqual([]);
    });
  }

  it("decides warm calls on an open channel from the cache: admitted untouched, refused before the handler", async () => {
    const server = await serve({ store: createThumbprintStore(sha256(pki.alice)) });
    const alice = connect(server, pki.alice);
    const bob = connect(server, pki.bob);
    for (let round = 0; round < 2; round++) {
      for (const kind of callKinds) {
        expect(await callEcho(alice, kind, `r${round}`)).toContain(`r${round} CN=alice`);
        expect((await refusalOf(callEcho(bob, kind, "secret"))).reason).toBe("not_allowed");
      }
    }
    expect(server.log.certificates.map((c) => c?.subject)).toEqual(new Array(8).fill("CN=alice"));
    expect(server.log.messages.filter((m) => m.includes("secret"))).toEqual([]);
    // One connection per client: the second round was decided from the cache.
    expect(new Set(server.log.peers).size).toBe(2);
  });

  it("refuses the next call on an open channel once the certificate leaves the folder store", async () => {
    const directory = await mkdtemp(join(tmpdir(), "certgate-grpc-js-"));
    const store = await createDirectoryStore({ directory, onProblem: () => {} });
    try {
      await writeFile(join(directory, "alice.pem"), pki.alice.cert);
      await waitFor(
        async () =>
          (await store.lookup(parseCertificate(pki.alice.cert), new AbortController().signal)).kind === "admitted",
        "alice in the store",
      );
      const server = await serve({ store });
      const client = connect(server, pki.alice);
      expect(await callEcho(client, "unary", "one")).toContain("one CN=alice");
      const revision = store.revision;
      await unlink(join(directory, "alice.pem"));
      await waitFor(() => store.revision !== revision, "the deletion to reach the store");
      const seen = await refusalOf(callEcho(client, "unary", "two"));
      expect(seen.code).toBe(grpc.status.UNAUTHENTICATED);
      expect(seen.reason).toBe("not_allowed");
      // Both calls came over the same connection.
      expect(server.log.peers).toHaveLength(2);
      expect(server.log.peers[1]).toBe(server.log.peers[0]);
      expect(server.log.messages).toEqual(["Echo one"]);
    } finally {
      await store.close();
      await rm(directory, { recursive: true, force: true });
    }
  });

  it("with ca, lets validateTrust: tls tell CA-signed from self-signed, the handshake refusing neither", async () => {
    const server = await startGrpcJsEchoServer({
      pki,
      interceptors: [
        createClientCertServerInterceptor({
          store: createThumbprintStore([sha256(pki.alice), sha256(selfSigned)]),
          validateTrust: "tls",
        }),
      ],
      credentials: createServerCredentials({ cert: pki.server.cert, key: pki.server.key, ca: pki.ca.cert }),
    });
    servers.push(server);
    expect(await callEcho(connect(server, pki.alice), "unary", "ca")).toBe("ca CN=alice");
    expect((await refusalOf(callEcho(connect(server, selfSigned), "unary", "self"))).reason).toBe("untrusted");
  });

  it("refuses with 7 (PERMISSION_DENIED) when identities refuse an admitted certificate", async () => {
    const server = await serve({
      store: createThumbprintStore([sha256(pki.alice), sha256(pki.bob)]),
      rules: [
        { procedure: "/certgate.example.v1.EchoService/EchoServerStream", identities: [{ commonName: "alice" }] },
      ],
    });
    expect(await callEcho(connect(server, pki.bob), "unary", "a")).toContain("CN=bob");
    expect(await callEcho(connect(server, pki.alice), "server-streaming", "b")).toContain("CN=alice");
    const seen = await refusalOf(callEcho(connect(server, pki.bob), "server-streaming", "c"));
    expect(seen).toMatchObject({
      code: grpc.status.PERMISSION_DENIED,
      details: "client certificate not allowed to call this procedure",
      reason: "not_allowed",
      statusCode: 7,
    });
    expect(server.log.messages).toEqual(["Echo a", "EchoServerStream b"]);
  });

  it("lets refused calls through with reportOnly, and reports them via grpc-js", async () => {
    const events: DecisionEvent[] = [];
    const server = await serve({
      store: createThumbprintStore(sha256(pki.alice)),
      reportOnly: true,
      onDecision: (e) => events.push(e),
    });
    expect(await callEcho(connect(server, pki.bob), "unary", "x")).toBe("x nobody");
    expect(await callEcho(connect(server, pki.alice), "bidi", "y")).toBe("y CN=alice|y CN=alice");
    expect(events.map((e) => [e.kind, e.reason, e.via, e.reportOnly, e.procedure])).toEqual([
      ["refused", "not_allowed", "grpc-js", true, "/certgate.example.v1.EchoService/Echo"],
      ["admitted", undefined, "grpc-js", false, echoBidiPath],
    ]);
    expect(server.log.certificates.map((c) => c?.subject)).toEqual([undefined, "CN=alice"]);
  });

  it("reports every decision, and leaves procedures open with allow: any", async () => {
    const events: DecisionEvent[] = [];
    const server = await serve({
      store: createThumbprintStore(sha256(pki.alice)),
      rules: [{ procedure: "/certgate.example.v1.EchoService/EchoServerStream", allow: "any" }],
      onDecision: (e) => events.push(e),
    });
    expect(await callEcho(connect(server, undefined), "server-streaming", "open")).toBe("open nobody|open nobody");
    await refusalOf(callEcho(connect(server, undefined), "unary", "closed"));
    expect(events.map((e) => [e.kind, e.open, e.via])).toEqual([
      ["admitted", true, "grpc-js"],
      ["refused", false, "grpc-js"],
    ]);
  });

  it("cannot be fooled by metadata into a certificate", async () => {
    const server = await serve({
      store: createThumbprintStore(sha256(pki.alice)),
      rules: [{ procedure: "/certgate.example.v1.EchoService/Echo", allow: "any" }],
    });
    const forged = new grpc.Metadata();
    for (const name of ["x-forwarded-client-cert", "client-cert", "x-ssl-client-cert", "certgate-client-certificate"]) {
      forged.set(name, encodeURIComponent(pki.alice.cert));
    }
    // An open procedure: the handler runs, with no certificate.
    expect(await callEcho(connect(server, pki.bob), "unary", "open", forged)).toBe("open nobody");
    // A checked one: bob is bob, whatever the headers say.
    const seen = await refusalOf(callEcho(connect(server, pki.bob), "server-streaming", "closed", forged));
    expect(seen.reason).toBe("not_allowed");
    expect(server.log.certificates).toEqual([undefined]);
    expect(clientCertificateOf({ call: { nextCall: {} } })).toBeUndefined();
  });

  it("fails at start-up on malformed options", () => {
    expect(() => createClientCertServerInterceptor({} as ClientCertServerInterceptorOptions)).toThrow(/store/);
    expect(() =>
      createClientCertServerInterceptor({
        store: createThumbprintStore(sha256(pki.alice)),
        forwardedCertificates: { trustedProxies: { cidrs: ["127.0.0.1/32"] }, formats: [] },
      }),
    ).toThrow(/formats/);
  });
});
