import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient, Code, ConnectError } from "@connectrpc/connect";
import { EchoService } from "../src/gen/certgate/example/v1/echo_pb.js";
import { createClientCertInterceptor, createThumbprintStore } from "../src/index.js";
import { parseCertificate } from "../src/certificate.js";
import { createTestPki, startEchoServer, transportFor, type TestPki, type TestServer } from "./harness.js";

describe("smoke", () => {
  let pki: TestPki;
  let server: TestServer;
  beforeAll(async () => {
    pki = await createTestPki();
    const store = createThumbprintStore(parseCertificate(pki.alice.cert).sha1);
    server = await startEchoServer({ pki, interceptors: [createClientCertInterceptor({ store })] });
  });
  afterAll(() => server.close());
  it("admits alice", async () => {
    const c = createClient(EchoService, transportFor(server, pki, pki.alice));
    expect((await c.echo({ text: "hi" })).text).toBe("hi");
  });
  it("refuses bob", async () => {
    const c = createClient(EchoService, transportFor(server, pki, pki.bob, "grpc"));
    const err = await c.echo({ text: "hi" }).catch((e) => ConnectError.from(e));
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).code).toBe(Code.Unauthenticated);
    expect((err as ConnectError).rawMessage).toBe("client certificate not allowed");
  });
});
