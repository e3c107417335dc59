import * as grpc from "@grpc/grpc-js";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { parseCertificate, type DecisionEvent } from "../../src/index.js";
import {
  createClientCertServerInterceptor,
  createThumbprintStore,
  type ClientCertServerInterceptorOptions,
} from "../../src/grpc-js/index.js";
import type { IssuedCertificate } from "../../src/dev-certificates.js";
import { createTestPki, type TestPki } from "../support/harness.js";
import { callEcho, refusalOf } from "../support/grpc-js-calls.js";
import { createBidiClient, startGrpcJsEchoServer, type GrpcJsEchoServer } from "../support/grpc-js-echo-server.js";

// Forwarded certificates on grpc-js: the proxy is a grpc-js client on
// 127.0.0.1 that sends the x-forwarded-client-cert header as metadata.

let pki: TestPki;
beforeAll(async () => {
  pki = await createTestPki();
});
const servers: GrpcJsEchoServer[] = [];
const clients: grpc.Client[] = [];
afterEach(() => {
  for (const c of clients.splice(0)) c.close();
});
afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

async function serve(cidr: string, events: DecisionEvent[] = []): Promise<GrpcJsEchoServer> {
  const options: ClientCertServerInterceptorOptions = {
    store: createThumbprintStore(parseCertificate(pki.alice.cert).sha256),
    forwardedCertificates: { trustedProxies: { cidrs: [cidr] }, formats: ["xfcc"] },
    onDecision: (e) => events.push(e),
  };
  const server = await startGrpcJsEchoServer({ pki, interceptors: [createClientCertServerInterceptor(options)] });
  servers.push(server);
  return server;
}

function proxy(server: GrpcJsEchoServer, own: IssuedCertificate | undefined) {
  const c = createBidiClient(
    server.port,
    own === undefined ? { ca: pki.ca.cert } : { ca: pki.ca.cert, cert: own.cert, key: own.key },
  );
  clients.push(c);
  return c;
}

function xfcc(...certificates: IssuedCertificate[]): grpc.Metadata {
  const metadata = new grpc.Metadata();
  for (const c of certificates) metadata.add("x-forwarded-client-cert", `Cert="${encodeURIComponent(c.cert)}"`);
  return metadata;
}

describe("createClientCertServerInterceptor() with forwardedCertificates", () => {
  it("from a trusted proxy, admits the forwarded certificate and refuses others, none, or an unreadable one", async () => {
    const events: DecisionEvent[] = [];
    const server = await serve("127.0.0.1/32", events);
    const p = proxy(server, undefined);
    expect(await callEcho(p, "unary", "hi", xfcc(pki.alice))).toBe("hi CN=alice");
    expect(await callEcho(p, "bidi", "b", xfcc(pki.alice))).toBe("b CN=alice|b CN=alice");
    expect((await refusalOf(callEcho(p, "unary", "x", xfcc(pki.bob)))).reason).toBe("not_allowed");
    expect((await refusalOf(callEcho(p, "unary", "x"))).reason).toBe("no_certificate");
    const junk = new grpc.Metadata();
    junk.set("x-forwarded-client-cert", 'Cert="not a certificate"');
    expect((await refusalOf(callEcho(p, "unary", "x", junk))).reason).toBe("invalid_certificate");
    // Node joins repeated header lines with ", " before grpc-js sees them:
    // two XFCC lines are one header of two elements, and the last element
    // (the nearest proxy's) decides, as XFCC defines.
    expect((await refusalOf(callEcho(p, "unary", "x", xfcc(pki.alice, pki.bob)))).reason).toBe("not_allowed");
    expect(events.map((e) => e.source)).toEqual(["proxy", "proxy", "proxy", "proxy", "proxy", "proxy"]);
    expect(server.log.messages).toEqual(["Echo hi", "EchoBidi b", "EchoBidi b"]);
  });

  it("from any other peer, ignores the header: the connection's own certificate decides", async () => {
    const events: DecisionEvent[] = [];
    const server = await serve("10.0.0.0/8", events);
    const seen = await refusalOf(callEcho(proxy(server, pki.bob), "unary", "x", xfcc(pki.alice)));
    expect(seen.reason).toBe("not_allowed");
    expect(await callEcho(proxy(server, pki.alice), "unary", "own", xfcc(pki.bob))).toBe("own CN=alice");
    expect(events.map((e) => [e.kind, e.source, e.ignoredForwardingHeaders])).toEqual([
      ["refused", "tls", ["x-forwarded-client-cert"]],
      ["admitted", "tls", ["x-forwarded-client-cert"]],
    ]);
  });
});
