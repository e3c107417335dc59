// A refused upload over HTTP/1.1 on connect-node (the same server as
// `certgate serve` and the examples: HTTP/2 with HTTP/1.1 allowed, the gate
// behind guardRequestHandler): the refusal says Connection: close and the
// server closes the connection instead of reading the body. Bytes are
// counted on the server's socket, not timed.
import type * as tls from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClientCertGate, createThumbprintStore, guardRequestHandler, parseCertificate } from "../../src/index.js";
import {
  createTestPki,
  echoPath,
  startEchoServer,
  waitFor,
  type TestPki,
  type TestServer,
} from "../support/harness.js";
import { http1Connect, http1Upload } from "../support/raw-requests.js";
import { createServicePki, startService, type RunningService } from "../support/service-harness.js";
import { createMemoryStore } from "../../src/stores/memory-store.js";

let pki: TestPki;
const servers: TestServer[] = [];
beforeAll(async () => {
  pki = await createTestPki();
});
afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

// What the server read of each connection, once it closed.
interface Reads {
  closed: number[];
}

async function serve(): Promise<{ server: TestServer; reads: Reads }> {
  const gate = createClientCertGate({ store: createThumbprintStore(parseCertificate(pki.alice.cert).sha256) });
  const server = await startEchoServer({
    pki,
    requestGate: gate,
    wrapHandler: (handler) => guardRequestHandler(handler, { gate }),
  });
  servers.push(server);
  const reads: Reads = { closed: [] };
  server.server.on("secureConnection", (s: tls.TLSSocket) => s.on("close", () => reads.closed.push(s.bytesRead)));
  return { server, reads };
}

const total = 64 * 1024 * 1024;
// What a server reads that stops at once: the request head and what the
// socket and the request stream buffer (tens of KiB). connect-node 2.3 alone
// drains 256 KiB before it closes; 2.2 reads the whole body and keeps the
// connection.
const bound = 128 * 1024;

describe("createClientCertGate() over HTTP/1.1 on connect-node", () => {
  for (const who of ["none", "bob"] as const) {
    it(`refuses an upload with 401 and Connection: close, and closes without reading it (${who === "none" ? "no certificate" : "an unknown certificate"})`, async () => {
      const { server, reads } = await serve();
      const credentials = who === "none" ? {} : { cert: pki.bob.cert, key: pki.bob.key };
      const result = await http1Upload(server.port, { path: echoPath, total, ...credentials });
      expect(result).toMatchObject({ status: 401, connection: "close", closedByServer: true });
      await waitFor(() => reads.closed.length === 1, "the server to close the connection");
      expect(reads.closed[0]).toBeLessThan(bound);
      expect(result.sent).toBeLessThan(total);
      expect(server.log.calls).toEqual([]);
    });
  }

  it("keeps an admitted client's connection open for its next request", async () => {
    const { server } = await serve();
    const answers = await keepAliveCalls(server.port, 2);
    expect(answers.map((a) => a.status)).toEqual([200, 200]);
    expect(answers.map((a) => a.connection)).toEqual(["keep-alive", "keep-alive"]);
  });
});

// Two requests on one connection, as alice: the second is sent only after
// the first answer, on the same socket.
function keepAliveCalls(port: number, n: number): Promise<{ status: number; connection: string | undefined }[]> {
  return new Promise((resolve, reject) => {
    const socket = http1Connect(port, pki.alice);
    const body = '{"text":"hi"}';
    const send = () =>
      socket.write(
        `POST ${echoPath} HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body}`,
      );
    const answers: { status: number; connection: string | undefined }[] = [];
    let received = "";
    socket.once("secureConnect", send);
    socket.on("data", (d: Buffer) => {
      received += d.toString("latin1");
      const end = received.indexOf("\r\n\r\n");
      const length = /\r\ncontent-length: *(\d+)/i.exec(received)?.[1];
      if (end < 0 || length === undefined || received.length < end + 4 + Number(length)) return;
      const head = received.slice(0, end);
      answers.push({
        status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0),
        connection: /\r\nconnection: *([^\r]*)/i.exec(head)?.[1]?.toLowerCase(),
      });
      received = received.slice(end + 4 + Number(length));
      if (answers.length < n) send();
      else {
        socket.end();
        resolve(answers);
      }
    });
    socket.on("error", reject);
  });
}

describe("createCertificateStoreServer() over HTTP/1.1", () => {
  it("refuses an upload from a client on no list with 401 and Connection: close, and closes without reading it", async () => {
    const servicePki = await createServicePki();
    const service: RunningService = await startService(servicePki, createMemoryStore());
    const reads: number[] = [];
    service.server.server.on("secureConnection", (s: tls.TLSSocket) => s.on("close", () => reads.push(s.bytesRead)));
    try {
      for (const who of [undefined, servicePki.stranger]) {
        const credentials = who === undefined ? {} : { cert: who.cert, key: who.key };
        const result = await http1Upload(service.port, {
          path: "/certgate.v1.CertificateStoreService/CreateCertificate",
          total,
          ...credentials,
        });
        expect(result).toMatchObject({ status: 401, connection: "close", closedByServer: true });
      }
      await waitFor(() => reads.length === 2, "the server to close both connections");
      for (const n of reads) expect(n).toBeLessThan(bound);
    } finally {
      await service.close();
    }
  });
});
