// The console as the server serves it, without a browser: the page by role,
// the help page, security and cache headers, and the Origin check on
// mutating calls.
import * as http2 from "node:http2";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { buildConsole, type ConsoleBuild } from "../../scripts/build-console.js";
import { issueDevCertificate, type IssuedCertificate } from "../../src/dev-certificates.js";
import { createCertificateStoreServer } from "../../src/service/certificate-store-server.js";
import { createMemoryStore } from "../../src/stores/memory-store.js";
import { h2Call } from "../support/raw-requests.js";
import {
  createServicePki,
  type RunningService,
  type ServicePki,
  sha256Of,
  startService,
  storeClient,
} from "../support/service-harness.js";

let pki: ServicePki;
let consoleDir: string;
let built: ConsoleBuild;

beforeAll(async () => {
  pki = await createServicePki();
  consoleDir = await mkdtemp(join(tmpdir(), "certgate-console-"));
  built = await buildConsole(consoleDir);
});

afterAll(async () => {
  if (consoleDir !== undefined) await rm(consoleDir, { recursive: true, force: true });
});

const opened: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (opened.length > 0) await opened.pop()?.();
});

async function service(withConsole = true): Promise<RunningService> {
  const store = createMemoryStore();
  await store.put("alice", (await issueDevCertificate(pki.ca, { commonName: "alice secret device" })).der);
  const running = await startService(pki, store, withConsole ? { console: { directory: consoleDir } } : {});
  opened.push(() => running.close());
  return running;
}

interface Response {
  status: number;
  headers: http2.IncomingHttpHeaders;
  body: string;
}

function get(port: number, path: string, client?: IssuedCertificate, headers: Record<string, string> = {}) {
  return new Promise<Response>((resolve, reject) => {
    const session = http2.connect(`https://127.0.0.1:${port}`, {
      rejectUnauthorized: false,
      ...(client === undefined ? {} : { cert: client.cert, key: client.key }),
    });
    session.on("error", reject);
    const req = session.request({ ":method": "GET", ":path": path, ...headers });
    let responseHeaders: http2.IncomingHttpHeaders = {};
    let body = "";
    req.on("response", (h) => (responseHeaders = h));
    req.on("data", (d: Buffer) => (body += d.toString()));
    req.on("error", reject);
    req.on("close", () => {
      session.close();
      resolve({ status: Number(responseHeaders[":status"]), headers: responseHeaders, body });
    });
    req.end();
  });
}

const csp = (headers: http2.IncomingHttpHeaders) => String(headers["content-security-policy"]);

describe("createCertificateStoreServer({ console })", () => {
  it("serves the page with the role of the client certificate, never cached", async () => {
    const running = await service();
    for (const [who, role] of [
      [pki.admin, "admin"],
      [pki.reader, "reader"],
    ] as const) {
      const res = await get(running.port, "/", who);
      expect(res.status).toBe(200);
      expect(res.body).toContain(`<meta name="certgate-role" content="${role}">`);
      expect(res.headers["cache-control"]).toBe("no-store");
      expect(res.headers["content-type"]).toBe("text/html; charset=utf-8");
    }
  });

  it("sends a strict Content-Security-Policy and no framing with every response", async () => {
    const running = await service();
    for (const path of ["/", "/assets/none.js"]) {
      const res = await get(running.port, path, pki.admin);
      const policy = csp(res.headers);
      expect(policy).toContain("default-src 'self'");
      expect(policy).toContain("frame-ancestors 'none'");
      expect(policy).toContain("script-src 'self';");
      expect(policy).not.toContain("unsafe-inline");
      expect(res.headers["x-frame-options"]).toBe("DENY");
      expect(res.headers["x-content-type-options"]).toBe("nosniff");
      expect(res.headers["set-cookie"]).toBeUndefined();
    }
    // Nothing inline in the page: one script and one stylesheet, by address.
    const page = (await get(running.port, "/", pki.admin)).body;
    expect(page).not.toMatch(/<script>|<script [^>]*>[^<]|<style|style="| on[a-z]+=/);
  });

  it("serves hashed assets with a year of caching and answers a revalidation with 304", async () => {
    const running = await service();
    const page = (await get(running.port, "/", pki.admin)).body;
    const script = /src="(\/assets\/app-[A-Z0-9]+\.js)"/.exec(page)?.[1];
    expect(script).toBeDefined();
    const res = await get(running.port, script!);
    expect(res.status).toBe(200);
    expect(res.headers["content-type"]).toBe("text/javascript; charset=utf-8");
    expect(res.headers["cache-control"]).toBe("public, max-age=31536000, immutable");
    const again = await get(running.port, script!, undefined, { "if-none-match": String(res.headers.etag) });
    expect(again.status).toBe(304);
    expect((await get(running.port, "/assets/missing.js")).status).toBe(404);
  });

  it("gives a browser without a certificate with a role the help page and no data", async () => {
    const running = await service();
    for (const who of [undefined, pki.stranger]) {
      const res = await get(running.port, "/", who);
      expect(res.status).toBe(403);
      expect(res.body).toContain("A client certificate with a role is needed");
      expect(res.body).not.toContain("alice");
      expect(res.body).not.toContain("<script");
      expect(csp(res.headers)).toContain("default-src 'self'");
    }
  });

  it("refuses a mutating call from a foreign origin, and admits it from its own or without one", async () => {
    const running = await service();
    const authority = `127.0.0.1:${running.port}`;
    const del = (id: string, headers: Record<string, string>) =>
      h2Call(running.port, {
        authority,
        path: "/certgate.v1.CertificateStoreService/DeleteCertificate",
        body: JSON.stringify({ certificateId: id }),
        cert: pki.admin.cert,
        key: pki.admin.key,
        headers,
      });
    for (const headers of <Record<string, string>[]>[
      { origin: "https://evil.example" },
      { origin: `http://${authority}` },
      { origin: "null" },
      { "sec-fetch-site": "cross-site" },
      { "sec-fetch-site": "same-site", origin: `https://${authority}` },
    ]) {
      const res = await del("alice", headers);
      expect(res.status, JSON.stringify(headers)).toBe(403);
      expect(JSON.parse(res.body)).toMatchObject({ code: "permission_denied" });
    }
    const admin = storeClient(running, pki, pki.admin);
    expect((await admin.getCertificate({ certificateId: "alice" })).certificate?.certificateId).toBe("alice");
    // Reading from a foreign origin is the browser's business (CORS): not refused here.
    const list = await h2Call(running.port, {
      authority,
      path: "/certgate.v1.CertificateStoreService/ListCertificates",
      cert: pki.reader.cert,
      key: pki.reader.key,
      headers: { origin: "https://evil.example" },
    });
    expect(list.status).toBe(200);
    expect((await del("alice", { origin: `https://${authority}`, "sec-fetch-site": "same-origin" })).status).toBe(200);
    await admin.createCertificate({
      certificate: (await issueDevCertificate(pki.ca, { commonName: "again" })).der,
      certificateId: "again",
    });
    expect((await del("again", {})).status).toBe(200);
  });

  it("checks the Origin of mutating calls without the console too, and then serves no page", async () => {
    const running = await service(false);
    const res = await h2Call(running.port, {
      authority: `127.0.0.1:${running.port}`,
      path: "/certgate.v1.CertificateStoreService/DeleteCertificate",
      body: JSON.stringify({ certificateId: "alice" }),
      cert: pki.admin.cert,
      key: pki.admin.key,
      headers: { origin: "https://evil.example" },
    });
    expect(res.status).toBe(403);
    const page = await get(running.port, "/", pki.admin);
    expect(page.status).not.toBe(200);
    expect(page.body).not.toContain("certgate-role");
  });

  it("ships at most 150 KB of JavaScript, gzipped, and loads pkijs only where it is needed", () => {
    expect(built.allScriptsGzipBytes).toBeLessThanOrEqual(150 * 1024);
    expect(built.scriptGzipBytes).toBeLessThan(built.allScriptsGzipBytes / 2);
  });

  it("fails at creation, naming the fix, when the console is not built", async () => {
    expect(() =>
      createCertificateStoreServer({
        store: createMemoryStore(),
        cert: pki.server.cert,
        key: pki.server.key,
        access: { admin: { thumbprints: [sha256Of(pki.admin)] } },
        console: { directory: join(consoleDir, "missing") },
      }),
    ).toThrow(/console: .*index\.html cannot be read.*npm run build/);
  });
});
