import { mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TLSSocket } from "node:tls";
import { Code, type ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { connectNodeAdapter, createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { IssuedCertificate } from "../../src/dev-certificates.js";
import { EchoService } from "../../src/gen/certgate/example/v1/echo_pb.js";
import { ClientCertificateErrorSchema } from "../../src/gen/certgate/v1/errors_pb.js";
import {
  createClientCertGate,
  createClientCertInterceptor,
  peerCertificateContextValues,
  type DecisionEvent,
} from "../../src/index.js";
import { clientIdentity } from "../../src/connect/client-identity.js";
import { createCrlFileSet, type CrlSet } from "../../src/policy/crl-set.js";
import type { ClientCertOptions } from "../../src/decision/decision.js";
import { connectErrorOf, waitFor } from "../support/harness.js";
import { createCrl, createPolicyPki, issue, serialOf, type PolicyPki } from "../support/policy-pki.js";

// The policy end to end: real TLS servers on 127.0.0.1, connect-node clients
// on the Connect and the gRPC protocol.

interface Server {
  url: string;
  connections: number;
  close(): Promise<void>;
}

async function start(
  pki: PolicyPki,
  certgate: { gate?: ClientCertOptions; interceptor?: ClientCertOptions },
  ca?: string,
): Promise<Server> {
  const interceptors: Interceptor[] =
    certgate.interceptor === undefined ? [] : [createClientCertInterceptor(certgate.interceptor)];
  const handler = connectNodeAdapter({
    routes: (router) =>
      router.service(EchoService, {
        // Tells the client who the handler thinks it is.
        echo(req, ctx) {
          const who = clientIdentity(ctx);
          return { text: `${req.text}|${who?.subject.commonName ?? "-"}|${who?.spiffeId ?? "-"}` };
        },
        async *echoServerStream(req) {
          for (let i = 0; i < req.count; i++) yield { text: req.text };
        },
        async echoClientStream(reqs, ctx) {
          let text = "";
          for await (const r of reqs) text += r.text;
          return { text: `${text}|${clientIdentity(ctx)?.subject.commonName ?? "-"}` };
        },
      }),
    interceptors,
    ...(certgate.gate === undefined ? {} : { requestGate: createClientCertGate(certgate.gate) }),
    contextValues: peerCertificateContextValues,
  });
  const server = http2.createSecureServer(
    {
      cert: pki.server.cert,
      key: pki.server.key,
      requestCert: true,
      rejectUnauthorized: false,
      ...(ca === undefined ? {} : { ca }),
    },
    handler,
  );
  const sockets = new Set<TLSSocket>();
  const result: Server = { url: "", connections: 0, close: async () => undefined };
  server.on("secureConnection", (s: TLSSocket) => {
    result.connections++;
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  result.url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  result.close = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      for (const s of sockets) s.destroy();
    });
  return result;
}

type Protocol = "connect" | "grpc";
function client(
  server: Server,
  pki: PolicyPki,
  who: IssuedCertificate | undefined,
  protocol: Protocol,
  chain: IssuedCertificate[] = [],
) {
  const nodeOptions = {
    ca: pki.root.cert,
    ...(who === undefined ? {} : { cert: [who.cert, ...chain.map((c) => c.cert)].join("\n"), key: who.key }),
  };
  const transport =
    protocol === "grpc"
      ? createGrpcTransport({ baseUrl: server.url, nodeOptions })
      : createConnectTransport({ baseUrl: server.url, httpVersion: "2", nodeOptions });
  return createClient(EchoService, transport);
}

function reasonOf(error: ConnectError): string | undefined {
  return error.findDetails(ClientCertificateErrorSchema)[0]?.reason;
}

let pki: PolicyPki;
let dave: IssuedCertificate;
let dir: string;
let crls: CrlSet;
beforeAll(async () => {
  pki = await createPolicyPki();
  dave = await issue(pki.int1, { commonName: "dave", usages: ["client"] });
  dir = await mkdtemp(join(tmpdir(), "certgate-policy-e2e-"));
  await writeFile(join(dir, "root.crl"), await createCrl(pki.root));
  await writeFile(join(dir, "int1.crl"), await createCrl(pki.int1));
  await writeFile(join(dir, "int2.crl"), await createCrl(pki.int2));
  crls = await createCrlFileSet({ directory: dir });
});
afterAll(async () => {
  await crls?.close();
  await rm(dir, { recursive: true, force: true });
});

describe("createClientCertGate() with a full policy", () => {
  let server: Server;
  const events: DecisionEvent[] = [];
  beforeAll(async () => {
    server = await start(pki, {
      gate: {
        validateTrust: { ca: [pki.root.cert, pki.int1.cert, pki.int2.cert] },
        validateRevocation: { crls },
        requireClientAuthUsage: true,
        identities: [
          { issuerSubject: "CN=Policy Root, O=Contoso\\, Inc., C=US" },
          { subject: 'C=US, O="Contoso, Inc.", CN=bob' },
          { commonName: "carol" },
          { commonName: "dave" },
        ],
        rules: [
          { procedure: "/certgate.example.v1.EchoService/EchoClientStream", allow: "any" },
          { procedure: "/certgate.example.v1.EchoService/EchoServerStream", identities: [{ commonName: "carol" }] },
        ],
        onDecision: (e) => events.push(e),
      },
    });
  });
  afterAll(() => server?.close());

  for (const protocol of ["connect", "grpc"] as const) {
    describe(`over ${protocol}`, () => {
      it("admits chains of depth 1, 2 and 3 (no intermediates sent) and gives handlers the identity", async () => {
        expect((await client(server, pki, pki.leaf1, protocol).echo({ text: "a" })).text).toBe(
          "a|alice|spiffe://example.org/ns/prod/sa/alice",
        );
        expect((await client(server, pki, pki.leaf2, protocol).echo({ text: "b" })).text).toBe("b|bob|-");
        expect((await client(server, pki, pki.leaf3, protocol).echo({ text: "c" })).text).toBe("c|carol|-");
      });
      it("refuses a certificate of another CA with Unauthenticated and the reason untrusted", async () => {
        const error = await connectErrorOf(client(server, pki, pki.stranger, protocol).echo({ text: "x" }));
        expect([error.code, error.rawMessage, reasonOf(error)]).toEqual([
          Code.Unauthenticated,
          "client certificate not trusted",
          "untrusted",
        ]);
      });
      it("refuses a certificate without clientAuth usage with the reason wrong_usage", async () => {
        const error = await connectErrorOf(client(server, pki, pki.serverOnly, protocol).echo({ text: "x" }));
        expect([error.code, reasonOf(error)]).toEqual([Code.Unauthenticated, "wrong_usage"]);
      });
      it("admits carol on a procedure whose rule names her", async () => {
        const texts: string[] = [];
        for await (const r of client(server, pki, pki.leaf3, protocol).echoServerStream({ text: "s", count: 2 }))
          texts.push(r.text);
        expect(texts).toEqual(["s", "s"]);
      });
      it("refuses alice there with PermissionDenied and the reason not_allowed", async () => {
        const error = await connectErrorOf(
          (async () => {
            for await (const r of client(server, pki, pki.leaf1, protocol).echoServerStream({ text: "s", count: 2 }))
              void r;
          })(),
        );
        expect([error.code, reasonOf(error), error.findDetails(ClientCertificateErrorSchema)[0]?.procedure]).toEqual([
          Code.PermissionDenied,
          "not_allowed",
          "/certgate.example.v1.EchoService/EchoServerStream",
        ]);
      });
      it("admits a call without a certificate on an open procedure, with no identity for the handler", async () => {
        expect(
          (
            await client(server, pki, undefined, protocol).echoClientStream(
              (async function* () {
                yield { text: "o" };
              })(),
            )
          ).text,
        ).toBe("o|-");
      });
      it("refuses a call without a certificate elsewhere", async () => {
        const error = await connectErrorOf(client(server, pki, undefined, protocol).echo({ text: "x" }));
        expect([error.code, reasonOf(error)]).toEqual([Code.Unauthenticated, "no_certificate"]);
      });
    });
  }

  it("admits dave, then refuses him on the same connection once a replaced CRL revokes him", async () => {
    const c = client(server, pki, dave, "connect");
    const before = server.connections;
    expect((await c.echo({ text: "1" })).text).toBe("1|dave|-");
    const revision = crls.revision;
    await writeFile(join(dir, ".int1.tmp"), await createCrl(pki.int1, { revoked: [serialOf(dave)] }));
    await rename(join(dir, ".int1.tmp"), join(dir, "int1.crl"));
    await waitFor(() => crls.revision !== revision, "the CRL reload");
    const error = await connectErrorOf(c.echo({ text: "2" }));
    expect([error.code, reasonOf(error)]).toEqual([Code.Unauthenticated, "revoked"]);
    expect(server.connections - before).toBe(1);
  });

  it("reports each call with its rule and reason", () => {
    expect(
      events.some(
        (e) =>
          e.kind === "refused" &&
          e.reason === "not_allowed" &&
          e.rule === "/certgate.example.v1.EchoService/EchoServerStream",
      ),
    ).toBe(true);
    expect(events.some((e) => e.kind === "admitted" && e.open === true)).toBe(true);
    expect(events.every((e) => e.reportOnly === false)).toBe(true);
  });
});

describe("createClientCertInterceptor() with reportOnly", () => {
  let server: Server;
  const events: DecisionEvent[] = [];
  beforeAll(async () => {
    server = await start(pki, {
      interceptor: {
        validateTrust: { ca: [pki.root.cert] },
        identities: [{ commonName: "alice" }],
        reportOnly: true,
        onDecision: (e) => events.push(e),
      },
    });
  });
  afterAll(() => server?.close());
  it("admits alice with her identity", async () => {
    expect((await client(server, pki, pki.leaf1, "grpc").echo({ text: "a" })).text).toBe(
      "a|alice|spiffe://example.org/ns/prod/sa/alice",
    );
  });
  it("refuses a stranger in the report but lets the call through, without an identity", async () => {
    events.length = 0;
    expect((await client(server, pki, pki.stranger, "connect").echo({ text: "s" })).text).toBe("s|-|-");
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      kind: "refused",
      reason: "untrusted",
      reportOnly: true,
      code: Code.Unauthenticated,
    });
  });
});

describe('createClientCertGate() with validateTrust: "tls"', () => {
  let server: Server;
  beforeAll(async () => {
    server = await start(
      pki,
      { gate: { validateTrust: "tls", identities: [{ uri: "spiffe://example.org/*" }, { commonName: "bob" }] } },
      pki.root.cert,
    );
  });
  afterAll(() => server?.close());
  it("admits a chain Node's TLS layer verified (the client sends its intermediate)", async () => {
    expect((await client(server, pki, pki.leaf1, "connect").echo({ text: "a" })).text).toBe(
      "a|alice|spiffe://example.org/ns/prod/sa/alice",
    );
    expect((await client(server, pki, pki.leaf2, "grpc", [pki.int1]).echo({ text: "b" })).text).toBe("b|bob|-");
  });
  it("refuses what Node's TLS layer did not verify", async () => {
    expect(reasonOf(await connectErrorOf(client(server, pki, pki.stranger, "grpc").echo({ text: "x" })))).toBe(
      "untrusted",
    );
    // Without its intermediate, bob's chain does not verify in TLS.
    expect(reasonOf(await connectErrorOf(client(server, pki, pki.leaf2, "connect").echo({ text: "x" })))).toBe(
      "untrusted",
    );
  });
});
