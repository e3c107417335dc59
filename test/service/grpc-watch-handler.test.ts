import * as http2 from "node:http2";
import * as https from "node:https";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as grpc from "@grpc/grpc-js";
import { create, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, createContextValues } from "@connectrpc/connect";
import { compressionGzip, createGrpcTransport } from "@connectrpc/connect-node";
import { grpcWatchRequestHandler } from "../../src/service/grpc-watch-handler.js";
import { listenOn } from "../../src/core/listen-address.js";
import {
  CertificateStoreService,
  WatchCertificatesRequestSchema,
  WatchCertificatesResponseSchema,
  type WatchCertificatesResponse,
} from "../../src/gen/certgate/v1/certificate_store_pb.js";
import { ClientCertificateErrorSchema } from "../../src/gen/certgate/v1/errors_pb.js";
import type { WritableCertificateStore } from "../../src/core/store.js";
import { createMemoryStore } from "../../src/stores/memory-store.js";
import {
  createGrpcJsClient,
  createServicePki,
  readWatch,
  startService,
  storeClient,
  type RunningService,
  type ServicePki,
} from "../support/service-harness.js";
import { waitFor } from "../support/harness.js";

const watchPath = "/certgate.v1.CertificateStoreService/WatchCertificates";

let pki: ServicePki;
let store: WritableCertificateStore;
let service: RunningService;

beforeAll(async () => {
  pki = await createServicePki();
  store = createMemoryStore();
  await store.put("alice", pki.alice.der);
  await store.put("bob", pki.bob.der);
  service = await startService(pki, store, { watchHeartbeatMs: 60_000 });
});

afterAll(async () => {
  await service.close();
  await store.close();
});

// What a mirror needs of a watch: the ids once caught up, then a deletion.
function summary(events: WatchCertificatesResponse[]) {
  return events.map((e) =>
    e.event.case === "snapshot"
      ? { snapshot: e.event.value.certificates.map((c) => c.certificateId), revision: e.revision }
      : e.event.case === "change"
        ? { deleted: e.event.value.deletedCertificateIds, revision: e.revision }
        : { heartbeat: e.revision },
  );
}

async function watchUntilDeleted(protocol: "grpc" | "connect", id: string): Promise<WatchCertificatesResponse[]> {
  const abort = new AbortController();
  const client = storeClient(service, pki, pki.reader, protocol);
  let deleted = false;
  return readWatch(
    client.watchCertificates({}, { signal: abort.signal }),
    (event) => {
      if (event.event.case === "heartbeat" && !deleted) {
        deleted = true;
        void store.delete(id);
      }
      return event.event.case === "change";
    },
    abort,
  );
}

/** One gRPC call on a new HTTP/2 session with a body of the test's making. */
async function rawGrpc(
  body: Uint8Array,
  headers: Record<string, string> = {},
): Promise<{ status: string | undefined; message: string | undefined; data: number }> {
  const session = http2.connect(service.url, { ca: pki.ca.cert, cert: pki.reader.cert, key: pki.reader.key });
  try {
    return await new Promise((resolve, reject) => {
      session.on("error", reject);
      const req = session.request({
        ":method": "POST",
        ":path": watchPath,
        "content-type": "application/grpc",
        te: "trailers",
        ...headers,
      });
      let status: string | undefined;
      let message: string | undefined;
      let data = 0;
      const note = (h: http2.IncomingHttpHeaders) => {
        if (h["grpc-status"] !== undefined) {
          status = String(h["grpc-status"]);
          message = decodeURIComponent(String(h["grpc-message"] ?? ""));
        }
      };
      req.on("response", note);
      req.on("trailers", note);
      req.on("data", (chunk: Buffer) => {
        data += chunk.length;
        // A watch that was admitted: the snapshot came, enough.
        if (status === undefined) req.close();
      });
      req.on("error", () => {});
      req.on("close", () => resolve({ status, message, data }));
      req.end(body);
    });
  } finally {
    session.close();
  }
}

function envelope(message: Uint8Array, flags = 0): Uint8Array {
  const out = new Uint8Array(5 + message.length);
  out[0] = flags;
  new DataView(out.buffer).setUint32(1, message.length);
  out.set(message, 5);
  return out;
}

const emptyRequest = toBinary(WatchCertificatesRequestSchema, create(WatchCertificatesRequestSchema));

describe("grpcWatchRequestHandler()", () => {
  it("sends a gRPC watcher the same snapshot, heartbeat and change as a Connect-protocol watcher", async () => {
    await store.put("carol", pki.stranger.der);
    const grpcEvents = await watchUntilDeleted("grpc", "carol");
    await store.put("dave", pki.stranger.der);
    const connectEvents = await watchUntilDeleted("connect", "dave");
    expect(summary(grpcEvents).map((e) => Object.keys(e)[0])).toEqual(["snapshot", "heartbeat", "deleted"]);
    expect(summary(grpcEvents)[0]).toMatchObject({ snapshot: ["alice", "bob", "carol"] });
    expect(summary(grpcEvents)[2]).toMatchObject({ deleted: ["carol"] });
    expect(summary(connectEvents).map((e) => Object.keys(e)[0])).toEqual(["snapshot", "heartbeat", "deleted"]);
    expect(summary(connectEvents)[0]).toMatchObject({ snapshot: ["alice", "bob", "dave"] });
    expect(summary(connectEvents)[2]).toMatchObject({ deleted: ["dave"] });
  });

  it("serves @grpc/grpc-js, and refuses it an unknown certificate with grpc-status 16", async () => {
    const admitted = createGrpcJsClient(service.port, {
      ca: pki.ca.cert,
      cert: pki.reader.cert,
      key: pki.reader.key,
    });
    const refused = createGrpcJsClient(service.port, {
      ca: pki.ca.cert,
      cert: pki.stranger.cert,
      key: pki.stranger.key,
    });
    try {
      const events = await admitted.serverStream(
        CertificateStoreService,
        "WatchCertificates",
        WatchCertificatesRequestSchema,
        WatchCertificatesResponseSchema,
        create(WatchCertificatesRequestSchema),
        2,
      );
      expect(events.map((e) => e.event.case)).toEqual(["snapshot", "heartbeat"]);
      const error = await refused
        .serverStream(
          CertificateStoreService,
          "WatchCertificates",
          WatchCertificatesRequestSchema,
          WatchCertificatesResponseSchema,
          create(WatchCertificatesRequestSchema),
          1,
        )
        .then(
          () => undefined,
          (e: grpc.ServiceError) => e,
        );
      expect(error?.code).toBe(grpc.status.UNAUTHENTICATED);
    } finally {
      admitted.close();
      refused.close();
    }
  });

  it("refuses a certificate on no list with Unauthenticated and the ClientCertificateError detail, as over Connect", async () => {
    for (const protocol of ["grpc", "connect"] as const) {
      const client = storeClient(service, pki, pki.stranger, protocol);
      const error = await readWatch(client.watchCertificates({}), () => true, new AbortController()).then(
        () => undefined,
        (e: unknown) => ConnectError.from(e),
      );
      expect(error?.code, protocol).toBe(Code.Unauthenticated);
      expect(error?.findDetails(ClientCertificateErrorSchema)[0], protocol).toMatchObject({
        procedure: watchPath,
        reason: "not_allowed",
      });
    }
  });

  it("ends a watch at its deadline with DeadlineExceeded", async () => {
    const client = storeClient(service, pki, pki.reader, "grpc");
    const seen: string[] = [];
    const error = await (async () => {
      for await (const event of client.watchCertificates({}, { timeoutMs: 500 })) seen.push(event.event.case ?? "");
    })().then(
      () => undefined,
      (e: unknown) => ConnectError.from(e),
    );
    expect(seen).toEqual(["snapshot", "heartbeat"]);
    expect(error?.code).toBe(Code.DeadlineExceeded);
  });

  it("frees the watch when its client cancels it", async () => {
    const abort = new AbortController();
    const client = storeClient(service, pki, pki.reader, "grpc");
    const events = client.watchCertificates({}, { signal: abort.signal });
    const reading = readWatch(events, (e) => e.event.case === "heartbeat", abort);
    await waitFor(() => service.server.service.openWatches === 1, "the watch to open");
    await reading;
    await waitFor(() => service.server.service.openWatches === 0, "every watch to end");
  });

  it("takes a compressed request through Connect, which serves it too", async () => {
    const client = createClient(
      CertificateStoreService,
      createGrpcTransport({
        baseUrl: service.url,
        sendCompression: compressionGzip,
        compressMinBytes: 0,
        nodeOptions: { ca: pki.ca.cert, cert: pki.reader.cert, key: pki.reader.key },
      }),
    );
    const abort = new AbortController();
    const events = await readWatch(
      client.watchCertificates({}, { signal: abort.signal }),
      (e) => e.event.case === "heartbeat",
      abort,
    );
    expect(events.map((e) => e.event.case)).toEqual(["snapshot", "heartbeat"]);
  });

  it("answers malformed requests with a gRPC error and keeps serving", async () => {
    const cases: [string, Uint8Array, Record<string, string>, string][] = [
      ["no message", new Uint8Array(0), {}, String(Code.InvalidArgument)],
      ["a cut envelope", envelope(emptyRequest).subarray(0, 3), {}, String(Code.InvalidArgument)],
      ["a length past the body", envelope(new Uint8Array(8)).subarray(0, 9), {}, String(Code.InvalidArgument)],
      [
        "two messages",
        new Uint8Array([...envelope(emptyRequest), ...envelope(emptyRequest)]),
        {},
        String(Code.InvalidArgument),
      ],
      ["a compressed flag without grpc-encoding", envelope(emptyRequest, 1), {}, String(Code.Internal)],
      [
        "bytes that are not the message",
        envelope(new Uint8Array([0xff, 0xff, 0xff])),
        {},
        String(Code.InvalidArgument),
      ],
      ["a body over the read limit", envelope(new Uint8Array(2 * 1024 * 1024)), {}, String(Code.ResourceExhausted)],
      ["a malformed grpc-timeout", envelope(emptyRequest), { "grpc-timeout": "forever" }, String(Code.InvalidArgument)],
    ];
    for (const [what, body, headers, status] of cases) {
      const result = await rawGrpc(body, headers);
      expect(result.status, what).toBe(status);
      expect(result.data, what).toBe(0);
    }
    // An admitted, well-formed watch still gets its snapshot.
    const ok = await rawGrpc(envelope(emptyRequest));
    expect(ok.status).toBeUndefined();
    expect(ok.data).toBeGreaterThan(0);
    await waitFor(() => service.server.service.openWatches === 0, "every watch to end");
  });

  it("ends running watches when the server closes, as Connect's path does", async () => {
    const outcomes: Record<string, unknown> = {};
    for (const protocol of ["grpc", "connect"] as const) {
      const own = await startService(pki, store);
      const client = storeClient(own, pki, pki.reader, protocol);
      const seen: string[] = [];
      let closing: Promise<void> | undefined;
      outcomes[protocol] = await (async () => {
        for await (const event of client.watchCertificates({})) {
          seen.push(event.event.case ?? "");
          if (event.event.case === "heartbeat") closing = own.close();
        }
      })().then(
        () => "ended",
        (e: unknown) => ConnectError.from(e).code,
      );
      await closing;
      await own.close();
      expect(seen, protocol).toEqual(["snapshot", "heartbeat"]);
    }
    expect(outcomes.grpc).toBe(outcomes.connect);
  });
});

describe("grpcWatchRequestHandler() routing", () => {
  it("serves binary gRPC watches itself and hands every other request to next", async () => {
    const handed: string[] = [];
    const server = http2.createSecureServer(
      { cert: pki.server.cert, key: pki.server.key, allowHTTP1: true },
      grpcWatchRequestHandler(
        (req, res) => {
          handed.push(`${req.headers["content-type"]} ${req.headers["grpc-encoding"] ?? ""}`.trim());
          req.resume();
          req.on("end", () => res.writeHead(404).end());
        },
        {
          async *watch() {
            yield create(WatchCertificatesResponseSchema, { revision: 7n, storeEpoch: "e" });
          },
          requestGate: async () => {},
          contextValues: () => createContextValues(),
          readMaxBytes: 1024,
          shutdownSignal: new AbortController().signal,
        },
      ),
    );
    const sessions = new Set<http2.ServerHttp2Session>();
    server.on("session", (session: http2.ServerHttp2Session) => sessions.add(session));
    const { url } = await listenOn(server, 0, "127.0.0.1", "https");
    const nodeOptions = { ca: pki.ca.cert };
    const post = (headers: Record<string, string>) =>
      new Promise<number>((resolve) => {
        const session = http2.connect(url, nodeOptions);
        const req = session.request({ ":method": "POST", ":path": watchPath, te: "trailers", ...headers });
        let data = 0;
        req.on("data", (chunk: Buffer) => (data += chunk.length));
        req.on("error", () => {});
        req.on("close", () => {
          session.close();
          resolve(data);
        });
        req.end(envelope(emptyRequest));
      });
    try {
      const revisions: bigint[] = [];
      const client = createClient(CertificateStoreService, createGrpcTransport({ baseUrl: url, nodeOptions }));
      for await (const e of client.watchCertificates({})) revisions.push(e.revision);
      expect(revisions).toEqual([7n]);
      expect(await post({ "content-type": "application/grpc" })).toBeGreaterThan(0);
      expect(await post({ "content-type": "application/grpc+proto", "grpc-encoding": "identity" })).toBeGreaterThan(0);
      expect(handed).toEqual([]);
      await post({ "content-type": "application/grpc+json" });
      await post({ "content-type": "application/grpc+proto", "grpc-encoding": "gzip" });
      await post({ "content-type": "application/connect+proto" });
      await post({ "content-type": "application/grpc-web+proto" });
      await post({ "content-type": "application/proto" });
      await new Promise<void>((resolve, reject) => {
        const req = https.request(`${url}${watchPath}`, {
          method: "POST",
          ca: pki.ca.cert,
          agent: false,
          headers: { "content-type": "application/grpc", connection: "close" },
        });
        req.on("response", (res) => {
          res.resume();
          res.on("end", resolve);
        });
        req.on("error", reject);
        req.end(envelope(emptyRequest));
      });
      expect(handed).toEqual([
        "application/grpc+json",
        "application/grpc+proto gzip",
        "application/connect+proto",
        "application/grpc-web+proto",
        "application/proto",
        "application/grpc",
      ]);
    } finally {
      // connect-node keeps its session open for the next call.
      for (const session of sessions) session.destroy();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
