import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { fromBinary } from "@bufbuild/protobuf";
import { Code, createClient } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EchoService } from "../../src/gen/certgate/example/v1/echo_pb.js";
import { ClientCertificateErrorSchema, parseCertificate } from "../../src/index.js";
import { createClientCertServerInterceptor, createThumbprintStore } from "../../src/grpc-js/index.js";
import type { IssuedCertificate } from "../../src/dev-certificates.js";
import { connectErrorOf, createTestPki, type TestPki } from "../support/harness.js";
import { startGrpcJsEchoServer, type GrpcJsEchoServer } from "../support/grpc-js-echo-server.js";

// certgate/grpc-js against the other gRPC clients: connect-node's gRPC
// transport and `buf curl --protocol grpc`. Both read the
// ClientCertificateError detail from grpc-status-details-bin, which proves
// it is encoded as Connect's own gRPC protocol encodes it.

const run = promisify(execFile);
let pki: TestPki;
let server: GrpcJsEchoServer;
let files: string;
const sessions: Http2SessionManager[] = [];

beforeAll(async () => {
  pki = await createTestPki();
  server = await startGrpcJsEchoServer({
    pki,
    interceptors: [
      createClientCertServerInterceptor({
        store: createThumbprintStore(parseCertificate(pki.alice.cert).sha256),
        rules: [
          { procedure: "/certgate.example.v1.EchoService/EchoClientStream", identities: [{ commonName: "bob" }] },
        ],
      }),
    ],
  });
  files = await mkdtemp(join(tmpdir(), "certgate-grpc-js-clients-"));
  for (const [name, pem] of Object.entries({
    "ca.pem": pki.ca.cert,
    "alice.pem": pki.alice.cert,
    "alice.key": pki.alice.key,
    "bob.pem": pki.bob.cert,
    "bob.key": pki.bob.key,
  })) {
    await writeFile(join(files, name), pem);
  }
});

afterAll(async () => {
  for (const s of sessions) s.abort();
  await server?.close();
  if (files !== undefined) await rm(files, { recursive: true, force: true });
});

function connectClient(client: IssuedCertificate | undefined) {
  const baseUrl = `https://127.0.0.1:${server.port}`;
  const tls = client === undefined ? { ca: pki.ca.cert } : { ca: pki.ca.cert, cert: client.cert, key: client.key };
  const sessionManager = new Http2SessionManager(baseUrl, undefined, tls);
  sessions.push(sessionManager);
  return createClient(EchoService, createGrpcTransport({ baseUrl, nodeOptions: tls, sessionManager }));
}

describe("certgate/grpc-js with connect-node's gRPC transport", () => {
  it("admits the pinned certificate, on unary and streaming calls", async () => {
    const client = connectClient(pki.alice);
    expect((await client.echo({ text: "hi" })).text).toBe("hi CN=alice");
    const texts: string[] = [];
    for await (const m of client.echoServerStream({ text: "s", count: 2 })) texts.push(m.text);
    expect(texts).toEqual(["s CN=alice", "s CN=alice"]);
  });

  it("refuses another certificate and none with Unauthenticated and the detail", async () => {
    for (const [client, reason] of [
      [pki.bob, "not_allowed"],
      [undefined, "no_certificate"],
    ] as const) {
      const error = await connectErrorOf(connectClient(client).echo({ text: "secret" }));
      expect(error.code).toBe(Code.Unauthenticated);
      expect(error.findDetails(ClientCertificateErrorSchema)).toEqual([
        expect.objectContaining({ reason, procedure: "/certgate.example.v1.EchoService/Echo" }),
      ]);
    }
  });

  it("refuses with PermissionDenied when identities refuse", async () => {
    async function* one() {
      yield { text: "x" };
    }
    const error = await connectErrorOf(connectClient(pki.alice).echoClientStream(one()));
    expect(error.code).toBe(Code.PermissionDenied);
    expect(error.rawMessage).toBe("client certificate not allowed to call this procedure");
    expect(error.findDetails(ClientCertificateErrorSchema)[0]?.reason).toBe("not_allowed");
  });
});

describe("certgate/grpc-js with buf curl --protocol grpc", () => {
  const buf = join(process.cwd(), "node_modules", ".bin", "buf");
  async function curl(client: "alice" | "bob" | undefined): Promise<{ ok: boolean; out: string }> {
    const args = [
      "curl",
      "--protocol",
      "grpc",
      "--schema",
      "proto",
      "--cacert",
      join(files, "ca.pem"),
      ...(client === undefined ? [] : ["--cert", join(files, `${client}.pem`), "--key", join(files, `${client}.key`)]),
      "-d",
      '{"text":"hi"}',
      `https://127.0.0.1:${server.port}/certgate.example.v1.EchoService/Echo`,
    ];
    try {
      const { stdout } = await run(buf, args);
      return { ok: true, out: stdout };
    } catch (error) {
      return { ok: false, out: String((error as { stderr?: string }).stderr) };
    }
  }

  it("admits the pinned certificate", async () => {
    const { ok, out } = await curl("alice");
    expect(ok).toBe(true);
    expect(JSON.parse(out)).toEqual({ text: "hi CN=alice" });
  });

  it("refuses another certificate and none with unauthenticated and the detail", async () => {
    for (const [client, reason] of [
      ["bob", "not_allowed"],
      [undefined, "no_certificate"],
    ] as const) {
      const { ok, out } = await curl(client);
      expect(ok).toBe(false);
      const error = JSON.parse(out);
      expect(error.code).toBe("unauthenticated");
      expect(error.details).toHaveLength(1);
      expect(error.details[0].type).toBe("certgate.v1.ClientCertificateError");
      const detail = fromBinary(ClientCertificateErrorSchema, Buffer.from(error.details[0].value, "base64"));
      expect(detail).toMatchObject({ reason, procedure: "/certgate.example.v1.EchoService/Echo" });
    }
  });
});
