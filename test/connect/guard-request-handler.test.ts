import * as http2 from "node:http2";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import * as tls from "node:tls";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import {
  createClientCertGate,
  createThumbprintStore,
  guardRequestHandler,
  isMalformedRequest,
  parseCertificate,
  peerCertificateContextValues,
  type GuardedRequestError,
} from "../../src/index.js";
import { killAll, startServe, type Serve } from "../support/cli-harness.js";
import { captureWarnings, createTestPki, echoPath, echoRoutes, waitFor, type TestPki } from "../support/harness.js";
import { printedPort, startExample, type ExampleProcess } from "../support/example-process.js";
import { h2Call, http10WithoutHost } from "../support/raw-requests.js";

const healthPath = "/grpc.health.v1.Health/Check";

describe("guardRequestHandler()", () => {
  let pki: TestPki;
  let server: http2.Http2SecureServer;
  let port: number;
  const events: GuardedRequestError[] = [];
  const thrownUnguarded: unknown[] = [];
  beforeAll(async () => {
    pki = await createTestPki();
    const adapter = connectNodeAdapter({
      routes: echoRoutes({ calls: [], clientCommonNames: [] }),
      requestGate: createClientCertGate({ store: createThumbprintStore(parseCertificate(pki.alice.cert).sha256) }),
      contextValues: peerCertificateContextValues,
    });
    const guarded = guardRequestHandler(adapter, { onError: (e) => events.push(e) });
    server = http2.createSecureServer(
      { cert: pki.server.cert, key: pki.server.key, requestCert: true, rejectUnauthorized: false, allowHTTP1: true },
      (req, res) => {
        if (req.url === "/throw-default") {
          guardRequestHandler<typeof req, typeof res>(() => {
            throw new Error("handler bug\nwith a forged line");
          })(req, res);
        } else if (req.url === "/throw") {
          guardRequestHandler<typeof req, typeof res>(
            () => {
              throw new Error("handler bug");
            },
            { onError: (e) => events.push(e) },
          )(req, res);
        } else if (req.headers["x-unguarded"] === "1") {
          // What connect-node does without the guard, caught here so that the
          // test process lives to tell.
          try {
            adapter(req, res);
          } catch (error) {
            thrownUnguarded.push(error);
            res.stream.close();
          }
        } else {
          guarded(req, res);
        }
      },
    );
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  it("shows connect-node 2.3.0 throwing synchronously on an unbracketed IPv6 :authority without it", async () => {
    const session = http2.connect(`https://127.0.0.1:${port}`, { rejectUnauthorized: false });
    await new Promise<void>((resolve) => {
      const req = session.request({
        ":method": "POST",
        ":path": echoPath,
        ":authority": `::1:${port}`,
        "x-unguarded": "1",
      });
      req.on("close", () => resolve());
      req.on("error", () => {});
      req.resume();
      req.end("{}");
    });
    session.destroy();
    expect(thrownUnguarded).toHaveLength(1);
  });

  it("answers an unbracketed IPv6 :authority with 400 and keeps serving", async () => {
    events.length = 0;
    const res = await h2Call(port, { authority: `::1:${port}`, path: echoPath, ...pki.alice });
    expect(res.status).toBe(400);
    expect(events.map((e) => e.kind)).toEqual(["malformed_request"]);
    expect(server.listening).toBe(true);
  });

  it.each(["a b", "[::1", "%zz", "host:99999", "x:y", "@", "[fe80::1%eth0]:1"])(
    "answers the :authority %j, which is no URL host, with 400 (or nghttp2 resets the stream)",
    async (authority) => {
      expect([400, "reset"]).toContain((await h2Call(port, { authority, path: echoPath, ...pki.alice })).status);
      expect(server.listening).toBe(true);
    },
  );

  it("answers HTTP/1.0 without Host with 400 and keeps serving", async () => {
    expect(await http10WithoutHost(port, echoPath)).toBe(400);
    expect(server.listening).toBe(true);
  });

  it("answers any other synchronous throw with 500 and reports it as a handler error", async () => {
    events.length = 0;
    const res = await h2Call(port, { authority: `localhost:${port}`, path: "/throw" });
    expect(res.status).toBe(500);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ kind: "handler_error", path: "/throw" });
    expect((events[0]!.error as Error).message).toBe("handler bug");
  });

  it("by default reports the first handler error as one CERTGATE_HANDLER_ERROR warning", async () => {
    const captured = captureWarnings();
    try {
      for (let i = 0; i < 2; i++) {
        expect((await h2Call(port, { authority: `localhost:${port}`, path: "/throw-default" })).status).toBe(500);
      }
      await waitFor(() => captured.warnings.length > 0, "the warning");
      expect(captured.warnings.filter((w) => w.code === "CERTGATE_HANDLER_ERROR")).toHaveLength(1);
      expect(captured.warnings[0]!.message).toContain('"POST /throw-default"');
    } finally {
      captured.stop();
    }
  });

  it("admits alice's next call and refuses a call without a certificate, as usual", async () => {
    expect((await h2Call(port, { authority: `localhost:${port}`, path: echoPath, ...pki.alice })).status).toBe(200);
    expect((await h2Call(port, { authority: `localhost:${port}`, path: echoPath })).status).toBe(401);
  });
});

describe("isMalformedRequest()", () => {
  let server: http2.Http2SecureServer;
  let port: number;
  // Per request that reached the handler: the predicate, and whether
  // connect-node's adapter threw on it.
  const seen: { malformed: boolean; threw: boolean }[] = [];
  beforeAll(async () => {
    const pki = await createTestPki();
    const adapter = connectNodeAdapter({ routes: echoRoutes({ calls: [], clientCommonNames: [] }) });
    server = http2.createSecureServer({ cert: pki.server.cert, key: pki.server.key, allowHTTP1: true }, (req, res) => {
      const malformed = isMalformedRequest(req);
      try {
        adapter(req, res);
        seen.push({ malformed, threw: false });
      } catch {
        seen.push({ malformed, threw: true });
        res.writeHead(400).end();
      }
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  // One HTTP/1.1 request with the given Host over TLS; resolves with the status.
  const http11 = (host: string) =>
    new Promise<number>((resolve, reject) => {
      const socket = tls.connect(
        { port, host: "127.0.0.1", rejectUnauthorized: false, ALPNProtocols: ["http/1.1"] },
        () =>
          socket.write(
            `POST ${echoPath} HTTP/1.1\r\nhost: ${host}\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}`,
          ),
      );
      let text = "";
      socket.on("data", (d: Buffer) => (text += d.toString("latin1")));
      socket.on("error", reject);
      socket.on("close", () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0)));
    });

  it("is true exactly where connect-node's adapter throws", async () => {
    const authorities = [
      `localhost:${port}`,
      `127.0.0.1:${port}`,
      `[::1]:${port}`,
      `::1:${port}`,
      "a b",
      "x:y",
      "%zz",
      "@",
    ];
    for (const authority of authorities) await h2Call(port, { authority, path: echoPath });
    for (const host of [`localhost:${port}`, `[::1]:${port}`, "::1:8443", "a b"]) await http11(host);
    await http10WithoutHost(port, echoPath);
    expect(seen.length).toBeGreaterThanOrEqual(9);
    expect(seen.filter((s) => s.malformed !== s.threw)).toEqual([]);
    // Both answers occurred: good requests served, malformed ones recognised.
    expect(seen.filter((s) => s.malformed).length).toBeGreaterThanOrEqual(4);
    expect(seen.filter((s) => !s.malformed).length).toBeGreaterThanOrEqual(5);
  });

  it("is false for a well-formed request and true for HTTP/1.0 without Host and an unbracketed IPv6 Host", async () => {
    seen.length = 0;
    expect(await http11(`[::1]:${port}`)).not.toBe(400);
    expect(await http11("::1:8443")).toBe(400);
    expect(await http10WithoutHost(port, echoPath)).toBe(400);
    expect((await h2Call(port, { authority: `::1:${port}`, path: echoPath })).status).toBe(400);
    expect(seen.map((s) => s.malformed)).toEqual([false, true, true, true]);
  });
});

describe("certgate serve", () => {
  let tmp: string;
  let serve: Serve;
  let port: number;
  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), "certgate-guard-"));
    serve = await startServe(["--data-dir", join(tmp, "data")]);
    port = Number(new URL(serve.url).port);
  });
  afterAll(async () => {
    await serve?.stop();
    killAll();
    await rm(tmp, { recursive: true, force: true });
  });

  it("answers an unbracketed IPv6 :authority with 400, and the next call is served", async () => {
    expect((await h2Call(port, { authority: `::1:${port}`, path: healthPath })).status).toBe(400);
    expect((await h2Call(port, { authority: `localhost:${port}`, path: healthPath })).status).toBe(200);
  });

  it("answers HTTP/1.0 without Host with 400, and the next call is served", async () => {
    expect(await http10WithoutHost(port, healthPath)).toBe(400);
    const res = await h2Call(port, { authority: `localhost:${port}`, path: healthPath });
    expect(res).toMatchObject({ status: 200, body: expect.stringContaining("SERVING") });
    expect(serve.child.exitCode).toBeNull();
  });
});

describe("npm run demo", () => {
  let tmp: string;
  let demo: ExampleProcess;
  let port: number;
  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), "certgate-demo-"));
    demo = await startExample("demo", { cwd: tmp, env: { PORT: "0" } });
    port = printedPort(demo.output().stdout);
  });
  afterAll(async () => {
    await demo?.stop();
    await rm(tmp, { recursive: true, force: true });
  });
  const alice = async () => {
    const dir = join(tmp, ".certgate", "demo");
    return {
      cert: await readFile(join(dir, "alice.pem"), "utf8"),
      key: await readFile(join(dir, "alice-key.pem"), "utf8"),
    };
  };

  it("answers an unbracketed IPv6 :authority with 400, and admits alice's next call", async () => {
    expect((await h2Call(port, { authority: `::1:${port}`, path: echoPath, ...(await alice()) })).status).toBe(400);
    expect((await h2Call(port, { authority: `localhost:${port}`, path: echoPath, ...(await alice()) })).status).toBe(
      200,
    );
  });

  it("answers HTTP/1.0 without Host with 400, and admits alice's next call", async () => {
    expect(await http10WithoutHost(port, echoPath)).toBe(400);
    expect((await h2Call(port, { authority: `localhost:${port}`, path: echoPath, ...(await alice()) })).status).toBe(
      200,
    );
    expect(demo.running()).toBe(true);
  });
});
