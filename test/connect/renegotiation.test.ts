import * as https from "node:https";
import type { AddressInfo } from "node:net";
import * as tls from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import {
  createClientCertInterceptor,
  createThumbprintStore,
  parseCertificate,
  peerCertificateContextValues,
} from "../../src/index.js";
import { createTestPki, echoRoutes, type TestPki } from "../support/harness.js";

// certgate reads the client certificate once per HTTP/1.1 connection, so a
// TLS 1.2 renegotiation (which could bring another certificate) must end the
// connection instead of keeping the first identity.
describe("peerCertificateContextValues() on HTTP/1.1 with TLS 1.2", () => {
  let pki: TestPki;
  let server: https.Server;
  let port: number;
  beforeAll(async () => {
    pki = await createTestPki();
    const store = createThumbprintStore(parseCertificate(pki.alice.cert).sha256);
    server = https.createServer(
      {
        cert: pki.server.cert,
        key: pki.server.key,
        requestCert: true,
        rejectUnauthorized: false,
        maxVersion: "TLSv1.2",
      },
      connectNodeAdapter({
        routes: echoRoutes({ calls: [], clientCommonNames: [] }),
        interceptors: [createClientCertInterceptor({ store })],
        contextValues: peerCertificateContextValues,
      }),
    );
    server.on("tlsClientError", () => {});
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  async function connect(): Promise<tls.TLSSocket> {
    const socket = tls.connect({
      host: "127.0.0.1",
      port,
      ca: pki.ca.cert,
      cert: pki.alice.cert,
      key: pki.alice.key,
      servername: "localhost",
      maxVersion: "TLSv1.2",
    });
    await new Promise<void>((resolve, reject) => {
      socket.once("secureConnect", resolve);
      socket.once("error", reject);
    });
    return socket;
  }

  function echo(socket: tls.TLSSocket): Promise<string> {
    const body = JSON.stringify({ text: "hi" });
    socket.write(
      `POST /certgate.example.v1.EchoService/Echo HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n` +
        `content-length: ${body.length}\r\nconnection: keep-alive\r\n\r\n${body}`,
    );
    return new Promise((resolve) => {
      let text = "";
      const onData = (chunk: Buffer) => {
        text += chunk.toString();
        if (text.includes('"text":"hi"') || text.includes("}")) {
          socket.off("data", onData);
          resolve(text.split("\r\n")[0] ?? "");
        }
      };
      socket.on("data", onData);
    });
  }

  it("admits the first call of a connection", async () => {
    const socket = await connect();
    try {
      expect(await echo(socket)).toBe("HTTP/1.1 200 OK");
    } finally {
      socket.destroy();
    }
  });

  it("refuses a renegotiation after the certificate was read: the connection ends", async () => {
    const socket = await connect();
    try {
      expect(await echo(socket)).toBe("HTTP/1.1 200 OK");
      const outcome = await new Promise<string>((resolve) => {
        socket.once("close", () => resolve("closed"));
        socket.once("error", () => {});
        const started = socket.renegotiate({ rejectUnauthorized: false }, (err) => {
          if (err === null || err === undefined) resolve("renegotiated");
        });
        if (!started) resolve("closed");
      });
      expect(outcome).toBe("closed");
    } finally {
      socket.destroy();
    }
  });
});
