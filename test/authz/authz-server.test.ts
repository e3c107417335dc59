// createAuthzServer() on its own: forward auth over HTTP/1.1 and h2c,
// per-procedure rules from the original URI headers, identity header values,
// limits, health and metrics.
import * as http from "node:http";
import * as http2 from "node:http2";
import * as https from "node:https";
import * as net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAuthzServer, type AuthzServer } from "../../src/authz/authz-server.js";
import { headerSafe, labelHeaderName } from "../../src/authz/identity-headers.js";
import type { WritableCertificateStore } from "../../src/core/store.js";
import { issueDevCertificate, type IssuedCertificate } from "../../src/dev-certificates.js";
import { createMemoryStore } from "../../src/stores/memory-store.js";
import { createTestPki, type TestPki } from "../support/harness.js";
import { createTestMetrics, type TestMetrics } from "../support/metrics.js";

let pki: TestPki;
let root: IssuedCertificate;
let zoe: IssuedCertificate;
let store: WritableCertificateStore;
let metrics: TestMetrics;
let authz: AuthzServer;
let port: number;
const cert = (c: IssuedCertificate) => encodeURIComponent(c.cert);

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function get(path: string, headers: Record<string, string>): Promise<Answer> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: "127.0.0.1", port, path, headers, agent: false }, (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => (body += d));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      })
      .on("error", reject);
  });
}

function getH2c(path: string, headers: Record<string, string>): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on("error", reject);
    const stream = session.request({ ":path": path, ...headers });
    let status = 0;
    let received: http.IncomingHttpHeaders = {};
    let body = "";
    stream.setEncoding("utf8");
    stream.on("response", (h) => {
      status = Number(h[":status"]);
      received = h as http.IncomingHttpHeaders;
    });
    stream.on("data", (d: string) => (body += d));
    stream.on("end", () => {
      session.close();
      resolve({ status, headers: received, body });
    });
    stream.end();
  });
}

// Bytes sent as they are, and what comes back before the server closes.
function raw(bytes: string | Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1", () => socket.end(bytes));
    let out = "";
    socket.on("data", (d: Buffer) => (out += d.toString("latin1")));
    socket.on("close", () => resolve(out));
    socket.on("error", reject);
  });
}

describe("createAuthzServer()", () => {
  beforeAll(async () => {
    pki = await createTestPki();
    root = await issueDevCertificate(pki.ca, { commonName: "root", usages: ["client"] });
    zoe = await issueDevCertificate(pki.ca, { commonName: "Zoë Ünal", subjectSuffix: "O=Contoso", usages: ["client"] });
    store = createMemoryStore();
    await store.put("alice", pki.alice.der, { labels: { team: "payments", "app.example.com/tier": "gold" } });
    await store.put("root", root.der);
    await store.put("zoe", zoe.der);
    metrics = createTestMetrics();
    authz = createAuthzServer({
      store,
      meterProvider: metrics.provider,
      rules: [
        { procedure: "/pkg.v1.AdminService/*", identities: [{ commonName: "root" }] },
        { procedure: "/pkg.v1.PublicService/*", allow: "any" },
      ],
      forwarded: { trustedProxies: { cidrs: ["127.0.0.1"] }, formats: ["nginx"], nginxHeader: "x-client-cert" },
      maxHeaderBytes: 16384,
    });
    ({ port } = await authz.listen(0, "127.0.0.1"));
  });
  afterAll(async () => {
    await authz?.close();
    await store?.close();
    await metrics?.shutdown();
  });

  it("admits with the identity headers over HTTP/1.1 and h2c alike", async () => {
    for (const send of [get, getH2c]) {
      const res = await send("/auth", { "x-client-cert": cert(pki.alice) });
      expect(res.status).toBe(200);
      expect(res.headers["certgate-subject"]).toBe("CN=alice");
      expect(res.headers["certgate-certificate-id"]).toBe("alice");
      expect(res.headers["certgate-label-team"]).toBe("payments");
      expect(res.headers["certgate-label-app.example.com%2ftier"]).toBe("gold");
    }
  });

  it("refuses with 401, the reason in a header and a small body", async () => {
    const res = await get("/auth", { "x-client-cert": cert(pki.bob) });
    expect(res.status).toBe(401);
    expect(res.headers["certgate-refusal-reason"]).toBe("not_allowed");
    expect(res.body).toBe("unauthenticated: client certificate not allowed (not_allowed)\n");
    expect(res.headers["certgate-subject"]).toBeUndefined();
  });

  it("writes a subject that is not ASCII percent-encoded", async () => {
    const res = await get("/auth", { "x-client-cert": cert(zoe) });
    expect(res.status).toBe(200);
    expect(decodeURIComponent(String(res.headers["certgate-subject"]))).toBe("CN=Zoë Ünal, O=Contoso");
    expect(String(res.headers["certgate-subject"])).toMatch(/^[\x20-\x7e]+$/);
  });

  it("selects the per-procedure rule from X-Original-URI (nginx) and X-Forwarded-Uri (Caddy, Traefik)", async () => {
    const admin = "/pkg.v1.AdminService/Delete?id=1";
    expect((await get("/auth", { "x-client-cert": cert(pki.alice), "x-original-uri": admin })).status).toBe(403);
    expect((await get("/auth", { "x-client-cert": cert(pki.alice), "x-forwarded-uri": admin })).status).toBe(403);
    expect((await get("/auth", { "x-client-cert": cert(root), "x-original-uri": admin })).status).toBe(200);
    const forbidden = await get("/auth", { "x-client-cert": cert(pki.alice), "x-original-uri": admin });
    expect(forbidden.headers["certgate-refusal-reason"]).toBe("not_allowed");
  });

  it("lets an open procedure through without a certificate, and without identity headers", async () => {
    const res = await get("/auth", { "x-original-uri": "/pkg.v1.PublicService/Ping" });
    expect(res.status).toBe(200);
    expect(res.headers["certgate-subject"]).toBeUndefined();
    expect((await get("/auth", { "x-original-uri": "/pkg.v1.OrderService/Get" })).status).toBe(401);
  });

  it("answers /healthz without a certificate", async () => {
    const res = await get("/healthz", {});
    expect(res).toMatchObject({ status: 200, body: "ok\n" });
  });

  it("refuses a certificate header sent twice", async () => {
    const res = await new Promise<number>((resolve, reject) => {
      const req = http.request({ host: "127.0.0.1", port, path: "/auth", agent: false }, (r) => {
        r.resume();
        resolve(r.statusCode ?? 0);
      });
      req.setHeader("x-client-cert", [cert(pki.bob), cert(pki.alice)]);
      req.on("error", reject);
      req.end();
    });
    expect(res).toBe(401);
  });

  it("survives malformed requests and oversized headers, and still answers", async () => {
    expect(await raw("GARBAGE\r\n\r\n")).toMatch(/^HTTP\/1\.1 400/);
    expect(await raw(`GET /auth HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(20_000)}\r\n\r\n`)).toMatch(
      /^HTTP\/1\.1 (400|431)/,
    );
    expect(await raw(Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x04\x99\x00garbage!"))).toBeDefined();
    expect((await get("/auth", { "x-client-cert": cert(pki.alice) })).status).toBe(200);
  });

  it("counts decisions in certgate.decisions with via authz", async () => {
    const points = await metrics.points("certgate.decisions");
    const viaAuthz = points.filter((p) => p.attributes["certgate.decision.via"] === "authz");
    expect(viaAuthz.some((p) => p.attributes["certgate.decision.result"] === "admitted" && p.value > 0)).toBe(true);
    expect(viaAuthz.some((p) => p.attributes["certgate.decision.result"] === "refused" && p.value > 0)).toBe(true);
  });
});

// The suites below have a store of their own: the first one's is closed.
async function aliceStore(): Promise<WritableCertificateStore> {
  const own = createMemoryStore();
  await own.put("alice", pki.alice.der);
  return own;
}

describe("createAuthzServer() without forwarding formats (Envoy's Check only)", () => {
  it("refuses forward auth as without a certificate, whatever header comes", async () => {
    const only = createAuthzServer({
      store: await aliceStore(),
      forwarded: { trustedProxies: { cidrs: ["127.0.0.1"] }, formats: [] },
    });
    try {
      ({ port } = await only.listen(0, "127.0.0.1"));
      const res = await get("/auth", { "x-client-cert": cert(pki.alice), "x-forwarded-client-cert": "Cert=x" });
      expect(res.status).toBe(401);
      expect(res.headers["certgate-refusal-reason"]).toBe("no_certificate");
    } finally {
      await only.close();
    }
  });
});

describe("createAuthzServer() limits and TLS", () => {
  it("closes an idle keep-alive connection and one that never finishes its headers", async () => {
    const limited = createAuthzServer({
      store: await aliceStore(),
      forwarded: { trustedProxies: { cidrs: ["127.0.0.1"] }, formats: [] },
      idleTimeoutMs: 300,
      headersTimeoutMs: 300,
    });
    try {
      const at = (await limited.listen(0, "127.0.0.1")).port;
      const closed = (bytes: string) =>
        new Promise<string>((resolve, reject) => {
          const socket = net.connect(at, "127.0.0.1", () => socket.write(bytes));
          let out = "";
          socket.on("data", (d: Buffer) => (out += d.toString("latin1")));
          socket.on("close", () => resolve(out));
          socket.on("error", reject);
        });
      // A finished request, then nothing: the answer, then the close.
      expect(await closed("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")).toMatch(/^HTTP\/1\.1 200/);
      // Headers that never end, and a connection that never sends anything.
      expect(await closed("GET /auth HTTP/1.1\r\nHost: x\r\nX-Slow: ")).toMatch(/^HTTP\/1\.1 408/);
      expect(await closed("")).toBe("");
    } finally {
      await limited.close();
    }
  }, 30_000);

  it("answers over TLS, HTTP/1.1 and HTTP/2", async () => {
    const secure = createAuthzServer({
      store: await aliceStore(),
      tls: { cert: pki.server.cert, key: pki.server.key },
      forwarded: { trustedProxies: { cidrs: ["127.0.0.1"] }, formats: ["nginx"], nginxHeader: "x-client-cert" },
    });
    try {
      const { port: at, url } = await secure.listen(0, "127.0.0.1");
      expect(url).toMatch(/^https:/);
      const h1 = await new Promise<http.IncomingMessage>((resolve, reject) => {
        https
          .get(
            {
              host: "127.0.0.1",
              port: at,
              path: "/auth",
              ca: pki.ca.cert,
              servername: "localhost",
              agent: false,
              headers: { "x-client-cert": cert(pki.alice) },
            },
            (res) => {
              res.resume();
              resolve(res);
            },
          )
          .on("error", reject);
      });
      expect(h1.statusCode).toBe(200);
      expect(h1.headers["certgate-subject"]).toBe("CN=alice");
      const h2 = await new Promise<number>((resolve, reject) => {
        const session = http2.connect(`https://127.0.0.1:${at}`, { ca: pki.ca.cert, servername: "localhost" });
        session.on("error", reject);
        const stream = session.request({ ":path": "/auth", "x-client-cert": cert(pki.bob) });
        stream.on("response", (h) => {
          session.close();
          resolve(Number(h[":status"]));
        });
        stream.resume();
        stream.end();
      });
      expect(h2).toBe(401);
    } finally {
      await secure.close();
    }
  });
});

describe("identity header values", () => {
  it("keeps printable ASCII and percent-encodes the rest, % included", () => {
    expect(headerSafe("CN=alice, O=Contoso")).toBe("CN=alice, O=Contoso");
    expect(headerSafe("a\r\nX-Evil: 1")).toBe("a%0D%0AX-Evil: 1");
    expect(headerSafe("100%")).toBe("100%25");
    expect(headerSafe("Zoë")).toBe("Zo%C3%AB");
  });
  it("names label headers after the key, with / as %2F", () => {
    expect(labelHeaderName("team")).toBe("Certgate-Label-team");
    expect(labelHeaderName("app.example.com/tier")).toBe("Certgate-Label-app.example.com%2Ftier");
  });
});
