import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as http2 from "node:http2";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { create, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import {
  CertificateStoreService,
  WatchCertificatesRequestSchema,
  type WatchCertificatesResponse,
} from "../../src/gen/certgate/v1/certificate_store_pb.js";
import { Health } from "../../src/gen/grpc/health/v1/health_pb.js";
import type { StoredCertificate, WritableCertificateStore } from "../../src/core/store.js";
import { createDirectoryStore, type DirectoryStore } from "../../src/stores/directory-store.js";
import { waitFor } from "../support/harness.js";
import {
  createServicePki,
  startService,
  storeClient,
  type RunningService,
  type ServicePki,
} from "../support/service-harness.js";

// The store service's limits on watches, with real servers and clients:
// caps per connection and in all, one snapshot part per paused watch over a
// folder of thousands of certificates, and resets that cost no reads.

const stored = 3000;
const partSize = 100;
let pki: ServicePki;
let dir: string;
let folder: DirectoryStore;

// A distinct, well-formed certificate per number: the template's serial
// number with its last four bytes replaced (a folder store hashes the DER; it
// never checks a leaf's signature).
function variant(template: Uint8Array, n: number): Uint8Array {
  const der = new Uint8Array(template);
  const header = (at: number) => at + 2 + ((der[at + 1]! & 0x80) === 0 ? 0 : der[at + 1]! & 0x7f);
  let at = header(header(0));
  if (der[at] === 0xa0) at += 2 + der[at + 1]!;
  new DataView(der.buffer).setUint32(at + 2 + der[at + 1]! - 4, n);
  return der;
}

beforeAll(async () => {
  pki = await createServicePki();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "certgate-watch-limits-"));
  for (let i = 0; i < stored; i++) {
    const body = Buffer.from(variant(pki.alice.der, i)).toString("base64").replace(/.{64}/g, "$&\n");
    fs.writeFileSync(
      path.join(dir, `c${String(i).padStart(5, "0")}.pem`),
      `-----BEGIN CERTIFICATE-----\n${body}\n-----END CERTIFICATE-----\n`,
    );
  }
  folder = await createDirectoryStore({ directory: dir, rescanIntervalMs: 0, onProblem: () => {} });
  expect(folder.stats().certificates).toBe(stored);
});

afterAll(async () => {
  await folder?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** The folder store, counting the pages listed and the certificates read. */
function counted(store: WritableCertificateStore) {
  const counts = { pages: 0, certificates: 0 };
  const wrapper = Object.assign(Object.create(store) as WritableCertificateStore, {
    async list(options: { after?: string; limit: number }): Promise<StoredCertificate[]> {
      counts.pages++;
      const page = await store.list(options);
      counts.certificates += page.length;
      return page;
    },
  });
  return { store: wrapper, counts };
}

function connect(service: RunningService, withCertificate = true): http2.ClientHttp2Session {
  return http2.connect(service.url, {
    ca: pki.ca.cert,
    ...(withCertificate ? { cert: pki.reader.cert, key: pki.reader.key } : {}),
    // A small window per stream, so that a watch nobody reads stalls soon.
    settings: { initialWindowSize: 16 * 1024 },
  });
}

function watchRequest(
  session: http2.ClientHttp2Session,
  path = "/certgate.v1.CertificateStoreService/WatchCertificates",
  body = toBinary(WatchCertificatesRequestSchema, create(WatchCertificatesRequestSchema, { includeDer: true })),
): http2.ClientHttp2Stream {
  const frame = Buffer.alloc(5 + body.length);
  frame.writeUInt32BE(body.length, 1);
  frame.set(body, 5);
  const stream = session.request({
    ":method": "POST",
    ":path": path,
    "content-type": "application/grpc",
    te: "trailers",
  });
  stream.end(frame);
  return stream;
}

// Reads the first event and leaves the call open (a for-await that returns
// would cancel it).
async function firstEventOrError(stream: AsyncIterable<unknown>): Promise<"event" | Code> {
  try {
    await stream[Symbol.asyncIterator]().next();
    return "event";
  } catch (error) {
    return ConnectError.from(error).code;
  }
}

describe("VerifyCertificate by thumbprint over a folder store", () => {
  it("answers a SHA-256 thumbprint from the folder's own index, listing nothing; a SHA-1 one from the service's index", async () => {
    const { store, counts } = counted(folder);
    const service = await startService(pki, store, { watchPartSize: partSize });
    try {
      const client = storeClient(service, pki, pki.reader, "grpc");
      const der = variant(pki.alice.der, 42);
      const sha256 = createHash("sha256").update(der).digest("hex").toUpperCase();
      const admitted = await client.verifyCertificate({ subject: { case: "thumbprint", value: sha256 } });
      expect(admitted.admitted).toBe(true);
      expect(admitted.certificate?.certificateId).toBe("c00042");
      const unknown = createHash("sha256")
        .update(variant(pki.alice.der, stored + 1))
        .digest("hex")
        .toUpperCase();
      const refused = await client.verifyCertificate({ subject: { case: "thumbprint", value: unknown } });
      expect([refused.admitted, refused.reason]).toEqual([false, "not_allowed"]);
      expect(counts.pages).toBe(0);
      const sha1 = createHash("sha1").update(der).digest("hex").toUpperCase();
      const bySha1 = await client.verifyCertificate({ subject: { case: "thumbprint", value: sha1 } });
      expect([bySha1.admitted, bySha1.certificate?.certificateId]).toEqual([true, "c00042"]);
      expect(counts.pages).toBeGreaterThan(0);
    } finally {
      await service.close();
    }
  });
});

describe("WatchCertificates limits", () => {
  it("refuses watches past the per-connection and the total limit with ResourceExhausted, and frees them when watches end", async () => {
    const service = await startService(pki, folder, {
      maxWatchesPerConnection: 2,
      maxWatches: 3,
      watchPartSize: partSize,
    });
    try {
      // One client is one HTTP/2 connection.
      const one = storeClient(service, pki, pki.reader, "grpc");
      const two = storeClient(service, pki, pki.reader, "grpc");
      const aborts: AbortController[] = [];
      const open = (client: typeof one) => {
        const abort = new AbortController();
        aborts.push(abort);
        return firstEventOrError(client.watchCertificates({}, { signal: abort.signal }));
      };
      expect(await open(one)).toBe("event");
      expect(await open(one)).toBe("event");
      expect(await open(one)).toBe(Code.ResourceExhausted); // third on one connection
      expect(await open(two)).toBe("event"); // another connection may
      expect(await open(two)).toBe(Code.ResourceExhausted); // but the server holds 3
      expect(service.server.service.epoch).toBeTruthy();
      // Ending a watch makes room again.
      aborts[0]!.abort();
      await waitFor(async () => (await open(two)) === "event", "a freed watch slot");
      for (const abort of aborts) abort.abort();
    } finally {
      await service.close();
    }
  });

  it("forgets every watch of a connection that goes away, paused or waiting, so that the limits count none of them", async () => {
    const service = await startService(pki, folder, {
      maxWatchesPerConnection: 6,
      maxWatches: 6,
      watchPartSize: partSize,
    });
    const others: Http2SessionManager[] = [];
    try {
      // Three watches nobody reads: each paused in its snapshot.
      const paused = connect(service);
      const pausedStreams = [watchRequest(paused), watchRequest(paused), watchRequest(paused)];
      for (const stream of pausedStreams) stream.on("error", () => undefined);
      // Three read through their snapshot: each waiting for the next change.
      const sessions = new Http2SessionManager(
        service.url,
        {},
        { ca: pki.ca.cert, cert: pki.reader.cert, key: pki.reader.key },
      );
      others.push(sessions);
      const reader = createClient(
        CertificateStoreService,
        createGrpcTransport({ baseUrl: service.url, sessionManager: sessions }),
      );
      const waiting = await Promise.all(
        [0, 1, 2].map(async () => {
          const events = reader.watchCertificates({}, { signal: new AbortController().signal })[Symbol.asyncIterator]();
          for (;;) {
            const { value } = await events.next();
            if ((value as WatchCertificatesResponse).event.case === "heartbeat") return events;
          }
        }),
      );
      expect(waiting).toHaveLength(3);
      await waitFor(() => service.server.service.openWatches === 6, "six open watches");
      const third = new Http2SessionManager(
        service.url,
        {},
        { ca: pki.ca.cert, cert: pki.reader.cert, key: pki.reader.key },
      );
      others.push(third);
      const late = createClient(
        CertificateStoreService,
        createGrpcTransport({ baseUrl: service.url, sessionManager: third }),
      );
      expect(await firstEventOrError(late.watchCertificates({}))).toBe(Code.ResourceExhausted);
      // Both connections go away without cancelling their calls.
      paused.destroy();
      sessions.abort();
      await waitFor(() => service.server.service.openWatches === 0, "every watch forgotten");
      // And the limits count none of them: six fit again.
      const aborts = [0, 1, 2, 3, 4, 5].map(() => new AbortController());
      const codes = await Promise.all(
        aborts.map((abort) => firstEventOrError(late.watchCertificates({}, { signal: abort.signal }))),
      );
      expect(codes).toEqual(["event", "event", "event", "event", "event", "event"]);
      for (const abort of aborts) abort.abort();
      await waitFor(() => service.server.service.openWatches === 0, "the new watches ended");
    } finally {
      for (const manager of others) manager.abort();
      await service.close();
    }
  });

  it("limits health Watch calls the same way, for clients without a certificate too", async () => {
    const service = await startService(pki, folder, { maxWatchesPerConnection: 1, maxWatches: 2 });
    try {
      const client = () =>
        createClient(Health, createGrpcTransport({ baseUrl: service.url, nodeOptions: { ca: pki.ca.cert } }));
      const [a, b, c] = [client(), client(), client()];
      const abort = new AbortController();
      const watch = (h: typeof a) => firstEventOrError(h.watch({ service: "" }, { signal: abort.signal }));
      expect(await watch(a)).toBe("event");
      expect(await watch(a)).toBe(Code.ResourceExhausted);
      expect(await watch(b)).toBe("event");
      expect(await watch(c)).toBe(Code.ResourceExhausted);
      abort.abort();
    } finally {
      await service.close();
    }
  });

  it("reads one snapshot part at a time: paused watches over 3000 certificates hold a part each, a reading one gets them all", async () => {
    const { store, counts } = counted(folder);
    const service = await startService(pki, store, { watchPartSize: partSize, maxWatchesPerConnection: 64 });
    const session = connect(service);
    try {
      const paused = Array.from({ length: 40 }, () => {
        const stream = watchRequest(session);
        stream.pause(); // never read
        return stream;
      });
      // Each paused watch read its first part and stalls on the client's
      // flow-control window; wait until every one has started.
      await waitFor(() => counts.pages >= paused.length, "every paused watch to read its first part");
      // A watch that reads to the end is served all 30 parts meanwhile,
      // which also gives the paused ones time to read ahead if they would.
      const reader = storeClient(service, pki, pki.reader, "grpc");
      const abort = new AbortController();
      let snapshotted = 0;
      for await (const event of reader.watchCertificates({}, { signal: abort.signal })) {
        if (event.event.case === "snapshot") snapshotted += event.event.value.certificates.length;
        if (event.event.case === "heartbeat") break;
      }
      abort.abort();
      expect(snapshotted).toBe(stored);
      // The paused watches: at most two parts each (one stuck in the write,
      // and, where the HTTP/2 window of the Node version let the first one
      // drain into the socket, the next one), never read ahead further and
      // never the whole store (30 parts each).
      const pausedPages = counts.pages - stored / partSize;
      expect(pausedPages).toBeGreaterThanOrEqual(paused.length);
      expect(pausedPages).toBeLessThanOrEqual(paused.length * 2);
      for (const stream of paused) stream.close(http2.constants.NGHTTP2_CANCEL);
    } finally {
      session.destroy();
      await service.close();
    }
  });

  it("does no read for watches reset right after they were sent (HEADERS + RST_STREAM), and keeps serving others", async () => {
    const { store, counts } = counted(folder);
    const service = await startService(pki, store, { watchPartSize: partSize });
    const session = connect(service);
    try {
      await new Promise<void>((resolve, reject) => session.once("connect", () => resolve()).once("error", reject));
      const flood = 300;
      const closed: Promise<void>[] = [];
      for (let i = 0; i < flood; i++) {
        const stream = watchRequest(session);
        closed.push(new Promise((resolve) => stream.once("close", () => resolve())));
        stream.on("error", () => undefined);
        // In the same tick: the request and its reset leave in one write.
        stream.close(http2.constants.NGHTTP2_CANCEL);
      }
      await Promise.all(closed);
      // Another client is answered while (and after) the flood lands.
      const other = storeClient(service, pki, pki.reader, "grpc");
      const listed = await other.listCertificates({ pageSize: 5 });
      expect(listed.certificates).toHaveLength(5);
      expect(counts.pages).toBe(1); // the list call's, none of the flood's
      // A watch that is not reset does read (the count can move).
      const live = watchRequest(session);
      live.on("data", () => undefined);
      await waitFor(() => counts.pages > 1, "a live watch to read");
      live.close(http2.constants.NGHTTP2_CANCEL);
    } finally {
      session.destroy();
      await service.close();
    }
  });
});
