import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { createClientCertGate, createThumbprintStore, parseCertificate, peerCertificateContextValues } from "../src/index.js";
import { createTestPki, echoRoutes, type TestPki } from "./support/harness.js";

// connect-node 2.3.0 throws synchronously from its request handler when
// :authority is an unbracketed IPv6 address ("::1:8443"), which would end the
// process. The README's FAQ tells users to wrap the handler; this proves the
// wrapper keeps the server up, and that certgate still decides normal calls.
describe("the README's handler wrapper for malformed :authority", () => {
  let pki: TestPki;
  let server: http2.Http2SecureServer;
  let port: number;
  const sessions = new Set<http2.ServerHttp2Session>();
  beforeAll(async () => {
    pki = await createTestPki();
    const handler = connectNodeAdapter({
      routes: echoRoutes({ calls: [], clientCommonNames: [] }),
      requestGate: createClientCertGate({ store: createThumbprintStore(parseCertificate(pki.alice.cert).sha256) }),
      contextValues: peerCertificateContextValues,
    });
    server = http2.createSecureServer(
      { cert: pki.server.cert, key: pki.server.key, requestCert: true, rejectUnauthorized: false },
      (req, res) => {
        try {
          handler(req, res);
        } catch {
          res.writeHead(400).end();
        }
      },
    );
    server.on("session", (s) => sessions.add(s));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    for (const s of sessions) s.destroy();
    await new Promise((resolve) => server.close(resolve));
  });

  function call(authority: string): Promise<number> {
    const session = http2.connect(`https://127.0.0.1:${port}`, {
      ca: pki.ca.cert,
      cert: pki.alice.cert,
      key: pki.alice.key,
      servername: "localhost",
    });
    return new Promise<number>((resolve, reject) => {
      const req = session.request({
        ":method": "POST",
        ":path": "/certgate.example.v1.EchoService/Echo",
        ":authority": authority,
        "content-type": "application/json",
      });
      let status = 0;
      req.on("response", (h) => (status = Number(h[":status"])));
      req.on("data", () => {});
      req.on("close", () => {
        session.close();
        resolve(status);
      });
      req.on("error", reject);
      req.end('{"text":"hi"}');
    });
  }

  it("refuses a request with an unbracketed IPv6 :authority with 400, and stays up", async () => {
    expect(await call(`::1:${port}`)).toBe(400);
    expect(server.listening).toBe(true);
  });

  it("admits alice's next call as usual", async () => {
    expect(await call(`localhost:${port}`)).toBe(200);
  });
});
