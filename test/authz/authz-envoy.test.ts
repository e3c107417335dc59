// Envoy's ext_authz Check, as Envoy's documentation says it calls it: unary
// gRPC over h2c, with the headers Envoy's gRPC client adds, and a
// CheckRequest with the client certificate in attributes.source.certificate.
// (Envoy is not in Debian: no real Envoy runs here.)
import * as http from "node:http";
import * as http2 from "node:http2";
import * as grpc from "@grpc/grpc-js";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAuthzServer, type AuthzServer } from "../../src/authz/authz-server.js";
import type { AuthzRequestEvent } from "../../src/authz/forward-auth.js";
import { HeaderValueOption_HeaderAppendAction } from "../../src/gen/envoy/config/core/v3/base_pb.js";
import {
  Authorization,
  CheckRequestSchema,
  CheckResponseSchema,
  type CheckResponse,
} from "../../src/gen/envoy/service/auth/v3/external_auth_pb.js";
import type { WritableCertificateStore } from "../../src/core/store.js";
import { createMemoryStore } from "../../src/stores/memory-store.js";
import { issueDevCertificate, type IssuedCertificate } from "../../src/dev-certificates.js";
import { createTestPki, type TestPki } from "../support/harness.js";

let pki: TestPki;
let root: IssuedCertificate;
let store: WritableCertificateStore;
let authz: AuthzServer;
let url: string;
let port: number;
const denied: AuthzRequestEvent[] = [];

// What Envoy sends for a client: the certificate as URL-encoded PEM (as
// Envoy's urlEncodedPemEncodedPeerCertificate), the request's headers, path
// and method, and fields certgate does not read (addresses, time, TLS SNI),
// added as Envoy's field numbers so that they are on the wire too.
function envoyCheckRequest(client: IssuedCertificate | undefined, path: string, headers: Record<string, string> = {}) {
  const known = toBinary(
    CheckRequestSchema,
    create(CheckRequestSchema, {
      attributes: {
        source: client === undefined ? {} : { certificate: encodeURIComponent(client.cert), principal: "" },
        destination: { principal: "spiffe://example.org/api" },
        request: {
          http: {
            id: "5c3a1d8e-0d0f-4e8e-9e55-2c1c8a7b6f10",
            method: "POST",
            headers: {
              ":authority": "api.example.com",
              ":method": "POST",
              ":path": path,
              ":scheme": "https",
              "content-type": "application/grpc",
              te: "trailers",
              "x-forwarded-proto": "https",
              "x-request-id": "5c3a1d8e-0d0f-4e8e-9e55-2c1c8a7b6f10",
              ...headers,
            },
            path,
            host: "api.example.com",
            scheme: "https",
            protocol: "HTTP/2",
          },
        },
        contextExtensions: { virtual_host: "api" },
      },
    }),
  );
  const socketAddress = (w: BinaryWriter, address: string, portValue: number) =>
    w
      .tag(1, WireType.LengthDelimited) // Address.socket_address
      .fork()
      .tag(2, WireType.LengthDelimited)
      .string(address)
      .tag(3, WireType.Varint)
      .uint32(portValue)
      .join();
  const w = new BinaryWriter().tag(1, WireType.LengthDelimited).fork(); // CheckRequest.attributes
  w.tag(1, WireType.LengthDelimited).fork().tag(1, WireType.LengthDelimited).fork(); // source.address
  socketAddress(w, "203.0.113.7", 51234).join().join();
  w.tag(2, WireType.LengthDelimited).fork().tag(1, WireType.LengthDelimited).fork(); // destination.address
  socketAddress(w, "10.0.0.2", 443).join().join();
  w.tag(4, WireType.LengthDelimited).fork().tag(1, WireType.LengthDelimited).fork(); // request.time
  w.tag(1, WireType.Varint).int64(1_765_000_000).join().join();
  w.tag(11, WireType.LengthDelimited).fork().join(); // metadata_context
  w.tag(12, WireType.LengthDelimited).fork().tag(1, WireType.LengthDelimited).string("api.example.com").join(); // tls_session.sni
  const unknown = w.join().finish();
  return Buffer.concat([known, unknown]);
}

// One unary call as Envoy's gRPC client makes it (envoy_grpc): h2c, the
// cluster name as :authority, a grpc-timeout from the filter's timeout, and
// the x-envoy-* headers of an internal request.
function envoyCheck(body: Buffer, localAddress = "127.0.0.1"): Promise<{ status: string; response: CheckResponse }> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(url, { localAddress } as http2.SecureClientSessionOptions);
    session.on("error", reject);
    const stream = session.request({
      ":method": "POST",
      ":scheme": "http",
      ":authority": "ext_authz-certgate",
      ":path": "/envoy.service.auth.v3.Authorization/Check",
      "content-type": "application/grpc",
      te: "trailers",
      "grpc-timeout": "200m",
      "x-envoy-internal": "true",
      "x-forwarded-for": "10.0.0.2",
      "x-envoy-expected-rq-timeout-ms": "200",
    });
    const chunks: Buffer[] = [];
    let status = "";
    stream.on("data", (d: Buffer) => chunks.push(d));
    stream.on("trailers", (t) => (status = String(t["grpc-status"])));
    stream.on("end", () => {
      session.close();
      const data = Buffer.concat(chunks);
      resolve({ status, response: fromBinary(CheckResponseSchema, data.subarray(5, 5 + data.readUInt32BE(1))) });
    });
    stream.on("error", reject);
    const frame = Buffer.alloc(5 + body.length);
    frame.writeUInt32BE(body.length, 1);
    body.copy(frame, 5);
    stream.end(frame);
  });
}

const headersOf = (response: CheckResponse) =>
  response.httpResponse.case === "okResponse"
    ? Object.fromEntries(response.httpResponse.value.headers.map((h) => [h.header?.key, h.header?.value]))
    : {};

describe("certgate authz: Envoy ext_authz Check", () => {
  beforeAll(async () => {
    pki = await createTestPki();
    root = await issueDevCertificate(pki.ca, { commonName: "root", usages: ["client"] });
    store = createMemoryStore();
    await store.put("alice", pki.alice.der, { labels: { team: "payments" } });
    await store.put("root", root.der);
    authz = createAuthzServer({
      store,
      rules: [{ procedure: "/pkg.v1.AdminService/*", identities: [{ commonName: "root" }] }],
      forwarded: { trustedProxies: { cidrs: ["127.0.0.1"] }, formats: ["xfcc"] },
      onDenied: (event) => denied.push(event),
    });
    ({ url, port } = await authz.listen(0, "127.0.0.1"));
  });
  afterAll(async () => {
    await authz?.close();
    await store?.close();
  });

  it("allows alice with the identity headers, overwriting the client's copies", async () => {
    const { status, response } = await envoyCheck(
      envoyCheckRequest(pki.alice, "/pkg.v1.OrderService/Get", { "certgate-subject": "CN=mallory" }),
    );
    expect(status).toBe("0");
    expect(response.status?.code).toBe(0);
    expect(headersOf(response)).toEqual({
      "Certgate-Subject": "CN=alice",
      "Certgate-Sha256": expect.stringMatching(/^[0-9A-F]{64}$/),
      "Certgate-Certificate-Id": "alice",
      "Certgate-Label-team": "payments",
    });
    const ok = response.httpResponse.case === "okResponse" ? response.httpResponse.value : undefined;
    expect(
      ok?.headers.every((h) => h.appendAction === HeaderValueOption_HeaderAppendAction.OVERWRITE_IF_EXISTS_OR_ADD),
    ).toBe(true);
  });

  it("removes a Certgate-* header the client sent that certgate does not set", async () => {
    const { response } = await envoyCheck(
      envoyCheckRequest(root, "/pkg.v1.OrderService/Get", { "certgate-label-team": "admins" }),
    );
    expect(response.status?.code).toBe(0);
    expect(headersOf(response)["Certgate-Label-team"]).toBeUndefined();
    expect(response.httpResponse.case === "okResponse" && response.httpResponse.value.headersToRemove).toEqual([
      "certgate-label-team",
    ]);
  });

  it("denies bob with 401 UNAUTHENTICATED and the reason", async () => {
    const { response } = await envoyCheck(envoyCheckRequest(pki.bob, "/pkg.v1.OrderService/Get"));
    expect(response.status?.code).toBe(16);
    expect(response.httpResponse.case).toBe("deniedResponse");
    const denial = response.httpResponse.case === "deniedResponse" ? response.httpResponse.value : undefined;
    expect(denial?.status?.code).toBe(401);
    expect(denial?.headers.map((h) => [h.header?.key, h.header?.value])).toContainEqual([
      "Certgate-Refusal-Reason",
      "not_allowed",
    ]);
    expect(denial?.body).toMatch(/not_allowed/);
  });

  it("denies a request without a client certificate", async () => {
    const { response } = await envoyCheck(envoyCheckRequest(undefined, "/pkg.v1.OrderService/Get"));
    expect(response.status?.code).toBe(16);
    expect(response.httpResponse.case === "deniedResponse" && response.httpResponse.value.status?.code).toBe(401);
  });

  it("selects the per-procedure rule by the request's path: 403 for alice, allowed for root", async () => {
    const alice = await envoyCheck(envoyCheckRequest(pki.alice, "/pkg.v1.AdminService/Delete?x=1"));
    expect(alice.response.status?.code).toBe(7);
    expect(
      alice.response.httpResponse.case === "deniedResponse" && alice.response.httpResponse.value.status?.code,
    ).toBe(403);
    const rootCheck = await envoyCheck(envoyCheckRequest(root, "/pkg.v1.AdminService/Delete"));
    expect(rootCheck.response.status?.code).toBe(0);
  });

  it("denies (403) and logs a Check from an address that is not a trusted proxy", async () => {
    const { response } = await envoyCheck(envoyCheckRequest(pki.alice, "/pkg.v1.OrderService/Get"), "127.0.0.2");
    expect(response.status?.code).toBe(7);
    expect(response.httpResponse.case === "deniedResponse" && response.httpResponse.value.status?.code).toBe(403);
    expect(denied.at(-1)).toMatchObject({ protocol: "ext-authz", address: "127.0.0.2" });
  });

  it("answers a plain unary gRPC client too", async () => {
    const client = createClient(Authorization, createGrpcTransport({ baseUrl: url }));
    const response = await client.check(
      create(CheckRequestSchema, {
        attributes: {
          source: { certificate: encodeURIComponent(pki.alice.cert) },
          request: { http: { path: "/pkg.v1.OrderService/Get", method: "POST" } },
        },
      }),
    );
    expect(response.status?.code).toBe(0);
    expect(headersOf(response)["Certgate-Subject"]).toBe("CN=alice");
  });

  it("answers another gRPC implementation (grpc-js, over h2c) with Envoy's metadata", async () => {
    const definition = {
      check: {
        path: "/envoy.service.auth.v3.Authorization/Check",
        requestStream: false,
        responseStream: false,
        requestSerialize: (value: Buffer) => value,
        requestDeserialize: (bytes: Buffer) => bytes,
        responseSerialize: (value: Buffer) => value,
        responseDeserialize: (bytes: Buffer) => fromBinary(CheckResponseSchema, bytes),
      },
    } as unknown as grpc.ServiceDefinition;
    const Client = grpc.makeGenericClientConstructor(definition, "Authorization");
    const client = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as grpc.Client & {
      check(
        request: Buffer,
        metadata: grpc.Metadata,
        options: grpc.CallOptions,
        callback: (error: grpc.ServiceError | null, response?: CheckResponse) => void,
      ): void;
    };
    try {
      const metadata = new grpc.Metadata();
      metadata.set("x-envoy-internal", "true");
      metadata.set("x-envoy-expected-rq-timeout-ms", "200");
      const check = (who: IssuedCertificate) =>
        new Promise<CheckResponse>((resolve, reject) =>
          client.check(
            envoyCheckRequest(who, "/pkg.v1.OrderService/Get"),
            metadata,
            { deadline: Date.now() + 5000 },
            (error, response) => (error === null && response !== undefined ? resolve(response) : reject(error)),
          ),
        );
      expect((await check(pki.alice)).status?.code).toBe(0);
      expect((await check(pki.bob)).status?.code).toBe(16);
    } finally {
      client.close();
    }
  });

  it("denies alice on the next Check once the store deletes her", async () => {
    await store.delete("alice");
    const { response } = await envoyCheck(envoyCheckRequest(pki.alice, "/pkg.v1.OrderService/Get"));
    expect(response.status?.code).toBe(16);
    await store.put("alice", pki.alice.der, { labels: { team: "payments" } });
  });

  it("still answers forward auth and /healthz on the same port", async () => {
    const status = await new Promise<number>((resolve, reject) => {
      http
        .get({ host: "127.0.0.1", port, path: "/healthz", agent: false }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        })
        .on("error", reject);
    });
    expect(status).toBe(200);
  });
});
