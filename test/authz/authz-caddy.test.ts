// certgate authz behind a real Caddy (examples/proxies/Caddyfile):
// forward_auth with the certificate as base64 DER.
import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { WritableCertificateStore } from "../../src/core/store.js";
import { startAuthzBehindProxy, type AuthzBehindProxy } from "../support/authz-behind-proxy.js";
import { waitFor, type TestPki } from "../support/harness.js";
import { freePort } from "../support/free-port.js";
import { getHttp1, getHttp2, haveProxies, startCaddy, type ProxyProcess, type Upstream } from "../support/proxies.js";

const required = process.env.CI === "true";
let certgate: AuthzBehindProxy;
let pki: TestPki;
let store: WritableCertificateStore;
let upstream: Upstream;
let caddy: ProxyProcess;
const base64Der = (der: Uint8Array) => Buffer.from(der).toString("base64");
const sha256 = (der: Uint8Array) => createHash("sha256").update(der).digest("hex").toUpperCase();

describe.skipIf(!haveProxies && !required)("certgate authz behind Caddy", () => {
  beforeAll(async () => {
    certgate = await startAuthzBehindProxy("caddy", {
      forwarded: {
        trustedProxies: { cidrs: ["127.0.0.1"] },
        formats: ["der-base64"],
        derBase64Header: "x-client-cert-der",
      },
    });
    ({ pki, store, upstream } = certgate);
    const { dir, authzPort, files } = certgate;
    caddy = await startCaddy(dir, { listen: await freePort(), authz: authzPort, upstream: upstream.port, ...files });
  }, 60_000);
  afterAll(async () => {
    await caddy?.stop();
    await certgate?.close();
  });

  it("admits alice, and the upstream sees who she is", async () => {
    const res = await getHttp1(caddy.port, "/orders?id=1", pki.ca.cert, pki.alice);
    expect(res.status, caddy.output()).toBe(200);
    expect(JSON.parse(res.body).headers).toEqual({
      "certgate-subject": "CN=alice",
      "certgate-sha256": sha256(pki.alice.der),
      "certgate-certificate-id": "alice",
      "certgate-label-team": "payments",
    });
    expect((await getHttp2(caddy.port, "/orders", pki.ca.cert, pki.alice)).status).toBe(200);
  });

  it("refuses bob and a client without a certificate with 401, before the upstream", async () => {
    const before = upstream.requests();
    const bob = await getHttp1(caddy.port, "/orders", pki.ca.cert, pki.bob);
    expect(bob.status).toBe(401);
    expect(bob.headers["certgate-refusal-reason"]).toBe("not_allowed");
    const none = await getHttp2(caddy.port, "/orders", pki.ca.cert, undefined);
    expect(none.status).toBe(401);
    expect(none.headers["certgate-refusal-reason"]).toBe("no_certificate");
    expect(upstream.requests()).toBe(before);
  });

  it("a client cannot impersonate alice with its own certificate header", async () => {
    const forged = { "x-client-cert-der": base64Der(pki.alice.der), "certgate-subject": "CN=alice" };
    expect((await getHttp1(caddy.port, "/orders", pki.ca.cert, undefined, forged)).status).toBe(401);
    expect((await getHttp1(caddy.port, "/orders", pki.ca.cert, pki.bob, forged)).status).toBe(401);
  });

  it("alice cannot change what the upstream is told about her", async () => {
    const res = await getHttp1(caddy.port, "/orders", pki.ca.cert, pki.alice, {
      "certgate-subject": "CN=mallory",
      "x-client-cert-der": base64Der(pki.bob.der),
    });
    expect(res.status).toBe(200);
    const seen = JSON.parse(res.body).headers;
    expect(seen["certgate-subject"]).toBe("CN=alice");
    expect(seen["x-client-cert-der"]).toBeUndefined();
  });

  it("a label the store does not give cannot be sent by the client", async () => {
    await store.put("bob", pki.bob.der);
    try {
      const res = await getHttp1(caddy.port, "/orders", pki.ca.cert, pki.bob, { "certgate-label-team": "admins" });
      expect(res.status).toBe(200);
      expect(JSON.parse(res.body).headers["certgate-subject"]).toBe("CN=bob");
      // Caddy 2.6 replaces the client's copy with the unfilled placeholder
      // (later versions remove it): either way not the client's value.
      const team = JSON.parse(res.body).headers["certgate-label-team"];
      expect(team === undefined || team === "{http.reverse_proxy.header.Certgate-Label-Team}").toBe(true);
    } finally {
      await store.delete("bob");
    }
  });

  it("refuses alice on the next request once the store deletes her", async () => {
    await store.delete("alice");
    const res = await getHttp1(caddy.port, "/orders", pki.ca.cert, pki.alice);
    expect(res.status).toBe(401);
    await store.put("alice", pki.alice.der, { labels: { team: "payments" } });
    expect((await getHttp1(caddy.port, "/orders", pki.ca.cert, pki.alice)).status).toBe(200);
  });

  it("fails closed when certgate is down", async () => {
    await certgate.stopAuthz();
    const before = upstream.requests();
    const res = await getHttp1(caddy.port, "/orders", pki.ca.cert, pki.alice);
    expect(res.status).toBeGreaterThanOrEqual(500);
    expect(upstream.requests()).toBe(before);
    await certgate.startAuthz();
    await waitFor(
      async () => (await getHttp1(caddy.port, "/orders", pki.ca.cert, pki.alice)).status === 200,
      "Caddy to reach certgate again",
    );
  });
});
