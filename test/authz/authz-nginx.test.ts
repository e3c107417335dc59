// certgate authz behind a real nginx (examples/proxies/nginx.conf):
// auth_request for HTTP/1.1 and HTTP/2, and gRPC through grpc_pass.
import { createHash } from "node:crypto";
import * as http from "node:http";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AuthzRequestEvent } from "../../src/authz/forward-auth.js";
import { EchoService } from "../../src/gen/certgate/example/v1/echo_pb.js";
import type { WritableCertificateStore } from "../../src/core/store.js";
import { startAuthzBehindProxy, type AuthzBehindProxy } from "../support/authz-behind-proxy.js";
import { waitFor, type TestPki } from "../support/harness.js";
import { freePort } from "../support/free-port.js";
import {
  getHttp1,
  getHttp2,
  haveProxies,
  startGrpcUpstream,
  startNginx,
  type ProxyProcess,
  type Upstream,
} from "../support/proxies.js";

const required = process.env.CI === "true";
let certgate: AuthzBehindProxy;
let pki: TestPki;
let store: WritableCertificateStore;
let authzPort: number;
let denied: AuthzRequestEvent[];
let upstream: Upstream;
let grpcUpstream: Upstream;
let nginx: ProxyProcess;

const escaped = (pem: string) => encodeURIComponent(pem);
const sha256 = (der: Uint8Array) => createHash("sha256").update(der).digest("hex").toUpperCase();

describe.skipIf(!haveProxies && !required)("certgate authz behind nginx", () => {
  beforeAll(async () => {
    denied = [];
    certgate = await startAuthzBehindProxy("nginx", {
      forwarded: { trustedProxies: { cidrs: ["127.0.0.1"] }, formats: ["nginx"], nginxHeader: "x-client-cert" },
      onDenied: (event) => denied.push(event),
    });
    ({ pki, store, upstream, authzPort } = certgate);
    grpcUpstream = await startGrpcUpstream();
    nginx = await startNginx(certgate.dir, {
      listen: await freePort(),
      authz: authzPort,
      upstream: upstream.port,
      grpcUpstream: grpcUpstream.port,
      ...certgate.files,
    });
  }, 60_000);
  afterAll(async () => {
    await nginx?.stop();
    await grpcUpstream?.close();
    await certgate?.close();
  });

  it("admits alice over HTTP/1.1, and the upstream sees who she is", async () => {
    const res = await getHttp1(nginx.port, "/orders?id=1", pki.ca.cert, pki.alice);
    expect(res.status, nginx.output()).toBe(200);
    expect(JSON.parse(res.body).headers).toEqual({
      "certgate-subject": "CN=alice",
      "certgate-sha256": sha256(pki.alice.der),
      "certgate-certificate-id": "alice",
      "certgate-label-team": "payments",
    });
  });

  it("refuses bob over HTTP/1.1 with 401 and the reason, before the upstream", async () => {
    const before = upstream.requests();
    const res = await getHttp1(nginx.port, "/orders", pki.ca.cert, pki.bob);
    expect(res.status).toBe(401);
    expect(res.headers["certgate-refusal-reason"]).toBe("not_allowed");
    expect(upstream.requests()).toBe(before);
  });

  it("refuses a client without a certificate", async () => {
    const res = await getHttp1(nginx.port, "/orders", pki.ca.cert, undefined);
    expect(res.status).toBe(401);
    expect(res.headers["certgate-refusal-reason"]).toBe("no_certificate");
  });

  it("admits alice and refuses bob over HTTP/2", async () => {
    const alice = await getHttp2(nginx.port, "/orders", pki.ca.cert, pki.alice);
    expect(alice.status).toBe(200);
    expect(JSON.parse(alice.body).headers["certgate-subject"]).toBe("CN=alice");
    const bob = await getHttp2(nginx.port, "/orders", pki.ca.cert, pki.bob);
    expect(bob.status).toBe(401);
    expect(bob.headers["certgate-refusal-reason"]).toBe("not_allowed");
  });

  it("admits alice and refuses bob over gRPC through grpc_pass", async () => {
    const client = (who: typeof pki.alice) =>
      createClient(
        EchoService,
        createGrpcTransport({
          baseUrl: `https://localhost:${nginx.port}`,
          nodeOptions: { ca: pki.ca.cert, cert: who.cert, key: who.key },
        }),
      );
    expect((await client(pki.alice).echo({ text: "hi" })).text).toBe("CN=alice");
    const before = grpcUpstream.requests();
    const error = await client(pki.bob)
      .echo({ text: "hi" })
      .then(
        () => undefined,
        (e: unknown) => ConnectError.from(e),
      );
    expect(error?.code).toBe(Code.Unauthenticated);
    expect(grpcUpstream.requests()).toBe(before);
  });

  it("a client cannot impersonate alice with its own certificate header", async () => {
    const forged = { "x-client-cert": escaped(pki.alice.cert), "certgate-subject": "CN=alice" };
    const none = await getHttp1(nginx.port, "/orders", pki.ca.cert, undefined, forged);
    expect(none.status).toBe(401);
    expect(none.headers["certgate-refusal-reason"]).toBe("no_certificate");
    const bob = await getHttp1(nginx.port, "/orders", pki.ca.cert, pki.bob, forged);
    expect(bob.status).toBe(401);
    expect(bob.headers["certgate-refusal-reason"]).toBe("not_allowed");
  });

  it("alice cannot change what the upstream is told about her", async () => {
    const res = await getHttp1(nginx.port, "/orders", pki.ca.cert, pki.alice, {
      "certgate-subject": "CN=mallory",
      "certgate-label-team": "admins",
      "x-client-cert": escaped(pki.bob.cert),
    });
    expect(res.status).toBe(200);
    const seen = JSON.parse(res.body).headers;
    expect(seen["certgate-subject"]).toBe("CN=alice");
    expect(seen["certgate-label-team"]).toBe("payments");
    expect(seen["x-client-cert"]).toBeUndefined();
  });

  it("refuses (403) and logs a certificate header from an address that is not a trusted proxy", async () => {
    const res = await new Promise<{ status: number; reason: unknown }>((resolve, reject) => {
      const req = http.request(
        {
          host: "127.0.0.1",
          port: authzPort,
          path: "/auth",
          localAddress: "127.0.0.2",
          headers: { "x-client-cert": escaped(pki.alice.cert), "x-original-uri": "/orders" },
          agent: false,
        },
        (r) => {
          r.resume();
          resolve({ status: r.statusCode ?? 0, reason: r.headers["certgate-refusal-reason"] });
        },
      );
      req.on("error", reject);
      req.end();
    });
    expect(res).toEqual({ status: 403, reason: "untrusted_proxy" });
    expect(denied.at(-1)).toMatchObject({ address: "127.0.0.2", procedure: "/orders" });
  });

  it("a label the store does not give cannot be sent by the client", async () => {
    await store.put("bob", pki.bob.der);
    try {
      const res = await getHttp1(nginx.port, "/orders", pki.ca.cert, pki.bob, { "certgate-label-team": "admins" });
      expect(res.status).toBe(200);
      expect(JSON.parse(res.body).headers["certgate-subject"]).toBe("CN=bob");
      expect(JSON.parse(res.body).headers["certgate-label-team"]).toBeUndefined();
    } finally {
      await store.delete("bob");
    }
  });

  it("refuses alice on the next request once the store deletes her", async () => {
    expect((await getHttp1(nginx.port, "/orders", pki.ca.cert, pki.alice)).status).toBe(200);
    await store.delete("alice");
    const res = await getHttp1(nginx.port, "/orders", pki.ca.cert, pki.alice);
    expect(res.status).toBe(401);
    expect(res.headers["certgate-refusal-reason"]).toBe("not_allowed");
    await store.put("alice", pki.alice.der, { labels: { team: "payments" } });
    expect((await getHttp1(nginx.port, "/orders", pki.ca.cert, pki.alice)).status).toBe(200);
  });

  it("fails closed when certgate is down, and admits again once it is back", async () => {
    await certgate.stopAuthz();
    const before = upstream.requests();
    const res = await getHttp1(nginx.port, "/orders", pki.ca.cert, pki.alice);
    expect(res.status).toBeGreaterThanOrEqual(500);
    expect(upstream.requests()).toBe(before);
    await certgate.startAuthz();
    await waitFor(
      async () => (await getHttp1(nginx.port, "/orders", pki.ca.cert, pki.alice)).status === 200,
      "nginx to reach certgate again",
    );
  });
});
