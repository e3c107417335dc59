// Online revocation end to end: real TLS servers on 127.0.0.1 (connect-node
// with the interceptor, grpc-js with its interceptor), clients presenting
// certificates of an openssl CA whose `openssl ocsp` responder answers.
import { Code, createClient } from "@connectrpc/connect";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { IssuedCertificate } from "../../src/dev-certificates.js";
import { EchoService } from "../../src/gen/certgate/example/v1/echo_pb.js";
import { ClientCertificateErrorSchema } from "../../src/gen/certgate/v1/errors_pb.js";
import { createClientCertServerInterceptor } from "../../src/grpc-js/index.js";
import { createClientCertInterceptor } from "../../src/index.js";
import type { ClientCertOptions } from "../../src/decision/decision.js";
import { callEcho, refusalOf } from "../support/grpc-js-calls.js";
import { createBidiClient, startGrpcJsEchoServer, type EchoBidiRawClient } from "../support/grpc-js-echo-server.js";
import {
  connectErrorOf,
  createTestPki,
  startEchoServer,
  transportFor,
  waitFor,
  type TestPki,
} from "../support/harness.js";
import { freePort } from "../support/free-port.js";
import { createOcspPki, type OcspIssued, type OcspPki, type OcspResponder } from "../support/ocsp-pki.js";
import { startRevocationStub, type RevocationStub } from "../support/revocation-stub.js";

let tls: TestPki;
let pki: OcspPki;
let responder: OcspResponder;
let good: IssuedCertificate;
let revoked: IssuedCertificate;
let orphan: IssuedCertificate;
let victim: OcspIssued;
let crlServer: RevocationStub;
const closers: (() => Promise<void> | void)[] = [];

beforeAll(async () => {
  tls = await createTestPki();
  pki = await createOcspPki();
  const port = await freePort();
  const ocspUrl = `http://127.0.0.1:${port}/`;
  const asIssued = (o: OcspIssued) => o as unknown as IssuedCertificate;
  good = asIssued(await pki.issue("good", { ocspUrl }));
  revoked = asIssued(await pki.issue("revoked", { ocspUrl }));
  pki.revoke(revoked as unknown as OcspIssued);
  // Its responder never runs.
  orphan = asIssued(await pki.issue("orphan", { ocspUrl: `http://127.0.0.1:${await freePort()}/` }));
  responder = await pki.responder("ca", { port });
  crlServer = await startRevocationStub({ kind: "status", status: 404 });
  victim = await pki.issue("victim", { crlUrl: `${crlServer.url}ca.crl` });
  crlServer.mode = { kind: "bytes", bytes: await pki.crl(1) };
}, 30_000);

afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

afterAll(async () => {
  await crlServer?.close();
  await responder?.stop();
  await pki?.remove();
});

const options = (): ClientCertOptions => ({
  validateTrust: { ca: [pki.cert] },
  validateRevocation: { ocsp: "hard-fail", onError: (e) => console.log(`online revocation: ${e.message}`) },
});

describe("validateRevocation.ocsp through createClientCertInterceptor()", () => {
  async function call(client: IssuedCertificate) {
    const server = await startEchoServer({ pki: tls, interceptors: [createClientCertInterceptor(options())] });
    closers.push(() => server.close());
    return createClient(EchoService, transportFor(server, tls, client)).echo({ text: "hi" });
  }
  it("admits a certificate the responder says is good", async () => {
    expect((await call(good)).text).toContain("hi");
  });
  it("refuses a revoked certificate with Unauthenticated and reason revoked", async () => {
    const error = await connectErrorOf(call(revoked));
    expect(error.code).toBe(Code.Unauthenticated);
    expect(error.findDetails(ClientCertificateErrorSchema)[0]?.reason).toBe("revoked");
  });
  it("refuses with ocsp_unavailable when the responder does not answer", async () => {
    const error = await connectErrorOf(call(orphan));
    expect(error.code).toBe(Code.Unauthenticated);
    expect(error.findDetails(ClientCertificateErrorSchema)[0]?.reason).toBe("ocsp_unavailable");
  });
});

describe("validateRevocation.ocsp through createClientCertServerInterceptor() (grpc-js)", () => {
  async function connect(client: IssuedCertificate): Promise<EchoBidiRawClient> {
    const server = await startGrpcJsEchoServer({
      pki: tls,
      interceptors: [createClientCertServerInterceptor(options())],
    });
    closers.push(() => server.close());
    const c = createBidiClient(server.port, { ca: tls.ca.cert, cert: client.cert, key: client.key });
    closers.push(() => c.close());
    return c;
  }
  it("admits a certificate the responder says is good", async () => {
    expect(await callEcho(await connect(good), "unary", "hi")).toContain("hi");
  });
  it("refuses a revoked certificate with status 16 and reason revoked", async () => {
    const seen = await refusalOf(callEcho(await connect(revoked), "unary", "hi"));
    expect(seen.code).toBe(16);
    expect(seen.reason).toBe("revoked");
  });
});

describe("validateRevocation.crlDistributionPoints through createClientCertInterceptor()", () => {
  it("refuses an admitted certificate, on its open connection and on a new one, once a refreshed CRL revokes it", async () => {
    let now = Date.now();
    const server = await startEchoServer({
      pki: tls,
      interceptors: [
        createClientCertInterceptor({
          clock: () => now,
          validateTrust: { ca: [pki.cert] },
          validateRevocation: { crlDistributionPoints: true, onError: () => undefined },
        }),
      ],
    });
    closers.push(() => server.close());
    const asIssued = victim as unknown as IssuedCertificate;
    const open = createClient(EchoService, transportFor(server, tls, asIssued));
    expect((await open.echo({ text: "before" })).text).toContain("before");
    pki.revoke(victim);
    crlServer.mode = { kind: "bytes", bytes: await pki.crl(1) };
    // Past the refresh time (10 minutes before nextUpdate): the next call starts the refresh.
    now += 55 * 60_000;
    expect((await open.echo({ text: "during" })).text).toContain("during");
    await waitFor(async () => {
      const error = await open.echo({ text: "after" }).then(
        () => undefined,
        (e: unknown) => e,
      );
      return error !== undefined;
    }, "the refreshed CRL");
    const onOpen = await connectErrorOf(open.echo({ text: "again" }));
    expect(onOpen.findDetails(ClientCertificateErrorSchema)[0]?.reason).toBe("revoked");
    const fresh = createClient(EchoService, transportFor(server, tls, asIssued));
    const onNew = await connectErrorOf(fresh.echo({ text: "new" }));
    expect(onNew.findDetails(ClientCertificateErrorSchema)[0]?.reason).toBe("revoked");
    expect(server.stats.connections).toBe(2);
  });
});
