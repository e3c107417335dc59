import type * as grpc from "@grpc/grpc-js";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createClientCertServerInterceptor } from "../../src/grpc-js/index.js";
import type { IssuedCertificate } from "../../src/dev-certificates.js";
import { createTestPki, createTestStore, issueOutOfWindowCertificates, type TestPki } from "../support/harness.js";
import { callEcho, refusalOf } from "../support/grpc-js-calls.js";
import { createBidiClient, startGrpcJsEchoServer, type GrpcJsEchoServer } from "../support/grpc-js-echo-server.js";
import { createTestMetrics, pointValue, type TestMetrics } from "../support/metrics.js";

let pki: TestPki;
let expired: IssuedCertificate;
beforeAll(async () => {
  pki = await createTestPki();
  expired = (await issueOutOfWindowCertificates(pki)).expired;
});

const servers: GrpcJsEchoServer[] = [];
const clients: grpc.Client[] = [];
const providers: TestMetrics[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await Promise.all(providers.splice(0).map((m) => m.shutdown()));
});
afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

function connect(server: GrpcJsEchoServer, client: IssuedCertificate | undefined) {
  const c = createBidiClient(
    server.port,
    client === undefined ? { ca: pki.ca.cert } : { ca: pki.ca.cert, cert: client.cert, key: client.key },
  );
  clients.push(c);
  return c;
}

describe("createClientCertServerInterceptor() metrics", () => {
  it("counts admitted and refused calls by reason, via grpc-js, and looks the store up once per connection", async () => {
    const m = createTestMetrics();
    providers.push(m);
    const store = createTestStore([pki.alice, expired]);
    const server = await startGrpcJsEchoServer({
      pki,
      interceptors: [createClientCertServerInterceptor({ store, meterProvider: m.provider, metricsProcedure: true })],
    });
    servers.push(server);
    const alice = connect(server, pki.alice);
    expect(await callEcho(alice, "unary", "1")).toContain("CN=alice");
    expect(await callEcho(alice, "server-streaming", "2")).toContain("CN=alice");
    expect((await refusalOf(callEcho(connect(server, pki.bob), "unary", "x"))).reason).toBe("not_allowed");
    expect((await refusalOf(callEcho(connect(server, undefined), "unary", "x"))).reason).toBe("no_certificate");
    expect((await refusalOf(callEcho(connect(server, expired), "bidi", "x"))).reason).toBe("expired");

    const points = await m.points("certgate.decisions");
    const via = { "certgate.decision.via": "grpc-js" };
    expect(pointValue(points, { ...via, "certgate.decision.result": "admitted", "rpc.method": "Echo" })).toBe(1);
    expect(
      pointValue(points, { ...via, "certgate.decision.result": "admitted", "rpc.method": "EchoServerStream" }),
    ).toBe(1);
    expect(pointValue(points, { ...via, "certgate.decision.reason": "not_allowed" })).toBe(1);
    expect(pointValue(points, { ...via, "certgate.decision.reason": "no_certificate" })).toBe(1);
    expect(pointValue(points, { ...via, "certgate.decision.reason": "expired", "rpc.method": "EchoBidi" })).toBe(1);
    expect(points.every((p) => p.attributes["rpc.service"] === "certgate.example.v1.EchoService")).toBe(true);
    expect(points.length).toBe(5);
    // alice's connection asked the store once for two calls; bob's once; the
    // expired certificate and the missing one never reach the store.
    const lookups = await m.points("certgate.store.lookup.duration");
    expect(pointValue(lookups, { "certgate.store.verdict": "admitted" })).toBe(1);
    expect(pointValue(lookups, { "certgate.store.verdict": "refused" })).toBe(1);
    expect(store.lookups).toBe(2);
  });
});
