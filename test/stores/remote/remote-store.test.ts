import { afterEach, beforeAll, describe, expect, it } from "vitest";
import type { ServerHttp2Session } from "node:http2";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { EchoService } from "../../../src/gen/certgate/example/v1/echo_pb.js";
import { parseCertificate, type Certificate } from "../../../src/core/certificate.js";
import { createClientCertInterceptor } from "../../../src/connect/client-cert-interceptor.js";
import { issueDevCertificate, type IssuedCertificate } from "../../../src/dev-certificates.js";
import type { WritableCertificateStore } from "../../../src/core/store.js";
import { createMemoryStore } from "../../../src/stores/memory-store.js";
import {
  createRemoteStore,
  type RemoteStore,
  type RemoteStoreEvent,
  type RemoteStoreOptions,
} from "../../../src/stores/remote-store.js";
import { startEchoServer, transportFor, waitFor, type TestServer } from "../../support/harness.js";
import {
  createServicePki,
  serviceTransport,
  startService,
  storeClient,
  type RunningService,
  type ServicePki,
} from "../../support/service-harness.js";

let pki: ServicePki;
let crowd: IssuedCertificate[];
beforeAll(async () => {
  pki = await createServicePki();
  crowd = await Promise.all(
    Array.from({ length: 24 }, (_, i) => issueDevCertificate(pki.ca, { commonName: `crowd-${i}`, usages: ["client"] })),
  );
});

// Everything a test opens, closed after it (in reverse order).
const opened: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (opened.length > 0) await opened.pop()?.();
});

async function service(store: WritableCertificateStore, port = 0): Promise<RunningService> {
  const running = await startService(pki, store, { watchHeartbeatMs: 200 }, port);
  opened.push(() => running.close());
  return running;
}

function remoteOf(running: { url: string }, options: Partial<RemoteStoreOptions> = {}): RemoteStore {
  const remote = createRemoteStore({
    transport: serviceTransport(running, pki, pki.reader, "grpc"),
    reconnectDelayMs: 20,
    maxReconnectDelayMs: 200,
    ...options,
  });
  opened.push(() => remote.close());
  return remote;
}

async function apiServer(remote: RemoteStore, clock?: () => number): Promise<TestServer> {
  const api = await startEchoServer({ pki, interceptors: [createClientCertInterceptor({ store: remote, clock })] });
  opened.push(() => api.close());
  return api;
}

async function outcome(client: Client<typeof EchoService>): Promise<string> {
  try {
    await client.echo({ text: "hi" });
    return "admitted";
  } catch (error) {
    const e = ConnectError.from(error);
    return e.code === Code.Unauthenticated ? e.rawMessage : `unexpected ${Code[e.code]}: ${e.rawMessage}`;
  }
}

const notAllowed = "client certificate not allowed";
const unavailable = "client certificate could not be checked: store unavailable";

describe("createRemoteStore() in mirror mode", () => {
  it("admits a certificate once uploaded, and refuses an open connection's next call once it is deleted", async () => {
    const store = createMemoryStore();
    const running = await service(store);
    const remote = remoteOf(running);
    await remote.ready(10_000);
    const api = await apiServer(remote);
    const alice = createClient(EchoService, transportFor(api, pki, pki.alice));
    expect(await outcome(alice)).toBe(notAllowed);

    const admin = storeClient(running, pki, pki.admin);
    await admin.createCertificate({ certificate: pki.alice.der, certificateId: "alice" });
    await waitFor(async () => (await outcome(alice)) === "admitted", "the upload to admit alice");

    const before = remote.revision;
    await admin.deleteCertificate({ certificateId: "alice" });
    await waitFor(() => remote.revision > before, "the deletion to reach the mirror");
    expect(await outcome(alice)).toBe(notAllowed);
    // All of alice's calls went over one HTTP/2 connection.
    expect(api.stats.sessions).toBe(1);
  });

  it("refuses every call once the service stops (fail closed)", async () => {
    const store = createMemoryStore();
    await store.put("alice", pki.alice.der);
    const running = await service(store);
    const remote = remoteOf(running);
    await remote.ready(10_000);
    const alice = createClient(EchoService, transportFor(await apiServer(remote), pki, pki.alice));
    expect(await outcome(alice)).toBe("admitted");
    await running.close();
    await waitFor(() => remote.state === "unavailable", "the mirror to notice");
    expect(await outcome(alice)).toBe(unavailable);
  });

  it("admits from the last synchronised set for maxStaleMs after the service stopped, then refuses", async () => {
    let offset = 0;
    const clock = () => Date.now() + offset;
    const store = createMemoryStore();
    await store.put("alice", pki.alice.der);
    const running = await service(store);
    const remote = remoteOf(running, { maxStaleMs: 60_000, clock });
    await remote.ready(10_000);
    const api = await apiServer(remote, clock);
    const alice = createClient(EchoService, transportFor(api, pki, pki.alice));
    const bob = createClient(EchoService, transportFor(api, pki, pki.bob));
    expect(await outcome(alice)).toBe("admitted");
    await running.close();
    await waitFor(() => remote.state === "stale", "the mirror to go stale");
    expect(await outcome(alice)).toBe("admitted");
    expect(await outcome(bob)).toBe(notAllowed);
    offset += 60_001;
    expect(remote.state).toBe("unavailable");
    expect(await outcome(alice)).toBe(unavailable);
  });

  it("resumes after the service restarts, and sees what changed meanwhile", async () => {
    const store = createMemoryStore();
    await store.put("alice", pki.alice.der);
    const first = await service(store);
    const events: RemoteStoreEvent[] = [];
    const remote = remoteOf(first, { onEvent: (e) => events.push(e) });
    await remote.ready(10_000);
    const api = await apiServer(remote);
    const alice = createClient(EchoService, transportFor(api, pki, pki.alice));
    const bob = createClient(EchoService, transportFor(api, pki, pki.bob));
    expect(await outcome(alice)).toBe("admitted");
    await first.close();
    await waitFor(() => remote.state === "unavailable", "the mirror to notice");
    await store.delete("alice");
    await store.put("bob", pki.bob.der);
    const second = await service(store, first.port);
    await waitFor(() => remote.state === "synced", "the mirror to resume", 20_000);
    expect(await outcome(alice)).toBe(notAllowed);
    expect(await outcome(bob)).toBe("admitted");
    const synced = events.filter((e) => e.kind === "synced");
    expect(synced.map((e) => e.kind === "synced" && e.via)).toEqual(["snapshot", "snapshot"]);
    expect(synced[1]?.kind === "synced" && synced[1].epoch).toBe(second.server.service.epoch);
    expect(events.some((e) => e.kind === "disconnected")).toBe(true);
  });

  it("resumes from its revision, without a snapshot, when only the connection broke", async () => {
    const store = createMemoryStore();
    const running = await service(store);
    const sessions = new Set<ServerHttp2Session>();
    running.server.server.on("session", (s: ServerHttp2Session) => sessions.add(s));
    const events: RemoteStoreEvent[] = [];
    const remote = remoteOf(running, { onEvent: (e) => events.push(e) });
    await remote.ready(10_000);
    await store.put("alice", pki.alice.der);
    await waitFor(
      async () =>
        (await remote.lookup(parseCertificate(pki.alice.der), new AbortController().signal)).kind === "admitted",
      "alice in the mirror",
    );
    for (const s of sessions) s.destroy();
    await waitFor(() => events.filter((e) => e.kind === "synced").length === 2, "the mirror to resume");
    const resumed = events.filter((e) => e.kind === "synced")[1];
    expect(resumed?.kind === "synced" && resumed.via).toBe("resume");
    expect((await remote.lookup(parseCertificate(pki.alice.der), new AbortController().signal)).kind).toBe("admitted");
  });

  it("refuses to trust a watch that went silent: it reconnects and resumes", async () => {
    const store = createMemoryStore();
    await store.put("alice", pki.alice.der);
    // Heartbeats far apart: the watch stays silent longer than idleTimeoutMs.
    const running = await startService(pki, store, { watchHeartbeatMs: 60_000 });
    opened.push(() => running.close());
    const events: RemoteStoreEvent[] = [];
    const remote = remoteOf(running, { idleTimeoutMs: 100, onEvent: (e) => events.push(e) });
    await remote.ready(10_000);
    await waitFor(() => events.some((e) => e.kind === "disconnected"), "the silent watch to be dropped");
    const dropped = events.find((e) => e.kind === "disconnected");
    expect(dropped?.kind === "disconnected" && ConnectError.from(dropped.error).code).toBe(Code.DeadlineExceeded);
    await waitFor(() => events.some((e) => e.kind === "synced" && e.via === "resume"), "the watch to resume");
    expect((await remote.lookup(parseCertificate(pki.alice.der), new AbortController().signal)).kind).toBe("admitted");
  });

  it("loses nothing under many concurrent uploads and deletions", async () => {
    const store = createMemoryStore();
    const running = await service(store);
    const remote = remoteOf(running);
    await remote.ready(10_000);
    const admin = storeClient(running, pki, pki.admin, "grpc");
    const present = new Set<string>();
    await Promise.all(
      crowd.map(async (certificate, i) => {
        const id = `crowd-${i}`;
        await admin.createCertificate({ certificate: certificate.der, certificateId: id });
        present.add(id);
        if (i % 3 === 0) {
          await admin.deleteCertificate({ certificateId: id });
          present.delete(id);
        }
      }),
    );
    const listed = (await admin.listCertificates({ pageSize: 1000 })).certificates.map((c) => c.certificateId);
    expect(listed.sort()).toEqual([...present].sort());
    const signal = new AbortController().signal;
    const mirrored = async () => {
      for (const [i, certificate] of crowd.entries()) {
        const verdict = await remote.lookup(parseCertificate(certificate.der), signal);
        if ((verdict.kind === "admitted") !== present.has(`crowd-${i}`)) return false;
      }
      return true;
    };
    await waitFor(mirrored, "the mirror to match the acknowledged uploads and deletions");
  });

  it("refuses before the first snapshot when the service cannot be reached", async () => {
    const gone = await startService(pki, createMemoryStore());
    await gone.close();
    const remote = remoteOf(gone, { syncTimeoutMs: 50 });
    const verdict = await remote.lookup(parseCertificate(pki.alice.der), new AbortController().signal);
    expect(verdict.kind).toBe("error");
    expect(remote.state).toBe("connecting");
    await expect(remote.ready(10)).rejects.toThrow(/not synchronised/);
  });

  it("refuses everything when its own certificate is not a reader's", async () => {
    const store = createMemoryStore();
    await store.put("alice", pki.alice.der);
    const running = await service(store);
    const events: RemoteStoreEvent[] = [];
    const remote = createRemoteStore({
      transport: serviceTransport(running, pki, pki.stranger),
      syncTimeoutMs: 50,
      onEvent: (e) => events.push(e),
    });
    opened.push(() => remote.close());
    await waitFor(() => events.length > 0, "the first failure");
    const failure = events[0];
    expect(failure?.kind === "disconnected" && ConnectError.from(failure.error).code).toBe(Code.Unauthenticated);
    expect((await remote.lookup(parseCertificate(pki.alice.der), new AbortController().signal)).kind).toBe("error");
  });

  it("refuses every lookup after close()", async () => {
    const store = createMemoryStore();
    await store.put("alice", pki.alice.der);
    const running = await service(store);
    const remote = remoteOf(running);
    await remote.ready(10_000);
    expect((await remote.lookup(parseCertificate(pki.alice.der), new AbortController().signal)).kind).toBe("admitted");
    await remote.close();
    expect(remote.state).toBe("closed");
    expect((await remote.lookup(parseCertificate(pki.alice.der), new AbortController().signal)).kind).toBe("error");
  });

  it("refuses bad options at start-up", () => {
    expect(() => createRemoteStore({} as RemoteStoreOptions)).toThrow(/transport is required/);
    const transport = serviceTransport({ url: "https://127.0.0.1:1" }, pki, pki.reader);
    expect(() => createRemoteStore({ transport, mode: "cache" as "lookup" })).toThrow(/mode/);
    expect(() => createRemoteStore({ transport, maxStaleMs: -1 })).toThrow(/maxStaleMs/);
    expect(() => createRemoteStore({ transport, reconnectDelayMs: 0 })).toThrow(/reconnectDelayMs/);
  });
});

// A certificate whose SHA-1 equals a stored certificate's but whose SHA-256
// does not is a different certificate: only a SHA-1 collision makes one
// (chosen-prefix collisions on certificates are practical). Stores of whole
// certificates must not admit it; they know both digests of what they keep.
function sha1Twin(of: IssuedCertificate, other: IssuedCertificate): Certificate {
  const original = parseCertificate(of.der);
  return { ...parseCertificate(other.der), sha1: original.sha1 };
}

describe("createRemoteStore() mirror lookup", () => {
  let carol: IssuedCertificate;
  beforeAll(async () => {
    carol = await issueDevCertificate(pki.ca, { commonName: "carol", usages: ["client"] });
  });

  async function mirrorOf() {
    const store = createMemoryStore();
    await store.put("alice", pki.alice.der);
    const running = await service(store);
    const remote = createRemoteStore({ transport: serviceTransport(running, pki, pki.reader, "grpc") });
    opened.push(() => remote.close());
    await remote.ready(10_000);
    return remote;
  }

  it("admits a certificate the service stores", async () => {
    const remote = await mirrorOf();
    const verdict = await remote.lookup(parseCertificate(pki.alice.der), new AbortController().signal);
    expect(verdict.kind).toBe("admitted");
  });

  it("refuses a certificate that shares only the SHA-1 thumbprint of a stored one", async () => {
    const remote = await mirrorOf();
    const verdict = await remote.lookup(sha1Twin(pki.alice, carol), new AbortController().signal);
    expect(verdict).toMatchObject({ kind: "refused", reason: "not_allowed" });
  });
});
