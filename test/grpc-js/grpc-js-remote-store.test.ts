import * as grpc from "@grpc/grpc-js";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { parseCertificate } from "../../src/core/certificate.js";
import { createClientCertServerInterceptor } from "../../src/grpc-js/index.js";
import { createMemoryStore } from "../../src/stores/memory-store.js";
import { createRemoteStore } from "../../src/stores/remote-store.js";
import { waitFor } from "../support/harness.js";
import { callEcho, refusalOf } from "../support/grpc-js-calls.js";
import { createBidiClient, startGrpcJsEchoServer } from "../support/grpc-js-echo-server.js";
import { createServicePki, serviceTransport, startService, type ServicePki } from "../support/service-harness.js";

// certgate/grpc-js on the remote store: a grpc-js API server whose store is
// a mirror of a certificate store service. A deletion on the service reaches
// the next call of a grpc-js channel that is already open.

let pki: ServicePki;
beforeAll(async () => {
  pki = await createServicePki();
});
const opened: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (opened.length > 0) await opened.pop()?.();
});

describe("createClientCertServerInterceptor() with the remote store", () => {
  it("admits what the service holds, and refuses the next call on an open channel once it is deleted", async () => {
    const memory = createMemoryStore();
    await memory.put("alice", pki.alice.der);
    const service = await startService(pki, memory, { watchHeartbeatMs: 200 });
    opened.push(() => service.close());
    const remote = createRemoteStore({ transport: serviceTransport(service, pki, pki.reader, "grpc") });
    opened.push(() => remote.close());
    await remote.ready(10_000);
    const server = await startGrpcJsEchoServer({
      pki,
      interceptors: [createClientCertServerInterceptor({ store: remote })],
    });
    opened.push(() => server.close());
    const alice = createBidiClient(server.port, { ca: pki.ca.cert, cert: pki.alice.cert, key: pki.alice.key });
    opened.push(() => alice.close());

    expect(await callEcho(alice, "unary", "one")).toBe("one CN=alice");
    expect((await refusalOf(callEcho(createBidiClientFor(server.port, "bob"), "unary", "x"))).reason).toBe(
      "not_allowed",
    );
    await memory.delete("alice");
    const aliceCertificate = parseCertificate(pki.alice.der);
    await waitFor(
      async () => (await remote.lookup(aliceCertificate, new AbortController().signal)).kind !== "admitted",
      "the deletion to reach the mirror",
    );
    const seen = await refusalOf(callEcho(alice, "unary", "two"));
    expect(seen).toMatchObject({ code: grpc.status.UNAUTHENTICATED, reason: "not_allowed" });
    expect(server.log.peers[2]).toBe(server.log.peers[0]); // alice's channel, still open
    expect(server.log.messages).toEqual(["Echo one"]);
  });
});

function createBidiClientFor(port: number, who: "bob"): ReturnType<typeof createBidiClient> {
  const client = createBidiClient(port, { ca: pki.ca.cert, cert: pki[who].cert, key: pki[who].key });
  opened.push(() => client.close());
  return client;
}
