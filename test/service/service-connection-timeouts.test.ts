import * as http2 from "node:http2";
import * as net from "node:net";
import * as tls from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { create, toBinary } from "@bufbuild/protobuf";
import { WatchCertificatesRequestSchema } from "../../src/gen/certgate/v1/certificate_store_pb.js";
import { createMemoryStore } from "../../src/stores/memory-store.js";
import type { WritableCertificateStore } from "../../src/core/store.js";
import { waitFor } from "../support/harness.js";
import { createServicePki, startService, type RunningService, type ServicePki } from "../support/service-harness.js";

// createCertificateStoreServer's idle and handshake timeouts, with raw TLS,
// TCP and HTTP/2 clients: connections without calls are closed, those with
// a call in progress are not.

let pki: ServicePki;
let store: WritableCertificateStore;
let service: RunningService;

beforeAll(async () => {
  pki = await createServicePki();
  store = createMemoryStore();
  await store.put("alice", pki.alice.der);
  service = await startService(pki, store, { idleTimeoutMs: 300, handshakeTimeoutMs: 300 });
});

afterAll(async () => {
  await service.close();
  await store.close();
});

/** A socket and whether it has closed. */
function tracked<T extends net.Socket>(socket: T): { socket: T; closed(): boolean } {
  let closed = false;
  socket.on("close", () => (closed = true));
  socket.on("error", () => undefined);
  // Read, so that the end of the connection is seen.
  socket.resume();
  return { socket, closed: () => closed };
}

function tlsConnection(alpn: string, withCertificate = false) {
  const { port } = service;
  const connection = tracked(
    tls.connect({
      host: "127.0.0.1",
      port,
      ca: pki.ca.cert,
      servername: "localhost",
      ALPNProtocols: [alpn],
      ...(withCertificate ? { cert: pki.reader.cert, key: pki.reader.key } : {}),
    }),
  );
  const secure = new Promise<void>((resolve) => connection.socket.once("secureConnect", () => resolve()));
  return { ...connection, secure };
}

/** A reader's HTTP/2 connection with one WatchCertificates call in progress. */
async function watching() {
  const session = http2.connect(service.url, { ca: pki.ca.cert, cert: pki.reader.cert, key: pki.reader.key });
  let closed = false;
  session.on("close", () => (closed = true));
  session.on("error", () => undefined);
  const body = toBinary(WatchCertificatesRequestSchema, create(WatchCertificatesRequestSchema));
  const frame = Buffer.alloc(5 + body.length);
  frame.writeUInt32BE(body.length, 1);
  frame.set(body, 5);
  const stream = session.request({
    ":method": "POST",
    ":path": "/certgate.v1.CertificateStoreService/WatchCertificates",
    "content-type": "application/grpc",
    te: "trailers",
  });
  stream.on("error", () => undefined);
  let received = 0;
  stream.on("data", (chunk: Buffer) => (received += chunk.length));
  stream.end(frame);
  await waitFor(() => received > 0, "the watch's first event");
  return { session, stream, closed: () => closed, received: () => received };
}

describe("createCertificateStoreServer({ idleTimeoutMs })", () => {
  it("closes an HTTP/2 TLS connection without certificate that makes no call, but not one with a call in progress; that one once the call ended", async () => {
    const active = await watching();
    const idle = tlsConnection("h2");
    await idle.secure;
    await waitFor(() => idle.closed(), "the idle connection to be closed");
    // The watching connection was opened first and is still open, and its
    // watch still hears changes.
    expect(active.closed()).toBe(false);
    const before = active.received();
    await store.put("bob", pki.bob.der);
    await waitFor(() => active.received() > before, "the change on the open watch");
    expect(active.closed()).toBe(false);
    // Once its last call ends, it is idle too.
    active.stream.close(http2.constants.NGHTTP2_CANCEL);
    await waitFor(() => active.closed(), "the connection to be closed once idle");
    await store.delete("bob");
  });

  it("closes an idle HTTP/1.1 TLS connection, but not one whose request is in progress", async () => {
    const busy = tlsConnection("http/1.1");
    await busy.secure;
    const envelope = Buffer.alloc(5);
    const json = Buffer.from("{}");
    envelope.writeUInt32BE(json.length, 1);
    const body = Buffer.concat([envelope, json]);
    let response = "";
    busy.socket.on("data", (chunk: Buffer) => (response += chunk.toString("latin1")));
    // A streaming health Watch over the Connect protocol: it runs until the
    // client leaves.
    busy.socket.write(
      `POST /grpc.health.v1.Health/Watch HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/connect+json\r\nContent-Length: ${body.length}\r\n\r\n`,
    );
    busy.socket.write(body);
    await waitFor(() => response.includes("SERVING"), "the health watch's first event");
    const idle = tlsConnection("http/1.1");
    await idle.secure;
    await waitFor(() => idle.closed(), "the idle HTTP/1.1 connection to be closed");
    expect(busy.closed()).toBe(false);
    expect(response).toMatch(/^HTTP\/1\.1 200/);
    busy.socket.destroy();
  });
});

describe("createCertificateStoreServer({ handshakeTimeoutMs })", () => {
  it("closes a TCP connection that never completes the TLS handshake, but not a completed one", async () => {
    const complete = tlsConnection("h2", true);
    await complete.secure;
    // A reader's call keeps it busy, so only the handshake timeout could close it.
    const session = http2.connect(service.url, { createConnection: () => complete.socket });
    session.on("error", () => undefined);
    const stream = session.request({
      ":method": "POST",
      ":path": "/grpc.health.v1.Health/Watch",
      "content-type": "application/grpc",
      te: "trailers",
    });
    stream.on("error", () => undefined);
    let received = 0;
    stream.on("data", (chunk: Buffer) => (received += chunk.length));
    stream.end(Buffer.alloc(5));
    await waitFor(() => received > 0, "the health watch's first event");
    const silent = tracked(net.connect(service.port, "127.0.0.1"));
    await waitFor(() => silent.closed(), "the silent TCP connection to be closed");
    expect(complete.closed()).toBe(false);
    session.destroy();
  });
});
