import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { create } from "@bufbuild/protobuf";
import {
  WatchCertificatesRequestSchema,
  type WatchCertificatesResponse,
} from "../../src/gen/certgate/v1/certificate_store_pb.js";
import { issueDevCertificate, type IssuedCertificate } from "../../src/dev-certificates.js";
import type { StoreChange, WritableCertificateStore } from "../../src/core/store.js";
import { createMemoryStore } from "../../src/stores/memory-store.js";
import { createWatchJournal, type WatchJournal } from "../../src/service/watch-journal.js";
import { watchStream } from "../../src/service/watch-stream.js";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  createServicePki,
  readWatch,
  sha256Of,
  startService,
  storeClient,
  type RunningService,
  type ServicePki,
} from "../support/service-harness.js";
import { waitFor } from "../support/harness.js";

let pki: ServicePki;
let certificates: IssuedCertificate[];

beforeAll(async () => {
  pki = await createServicePki();
  certificates = await Promise.all(
    Array.from({ length: 12 }, (_, i) =>
      issueDevCertificate(pki.ca, { commonName: `watched-${i}`, usages: ["client"] }),
    ),
  );
});

/** Applies watch events to a copy, the way a client must. */
function createCopy() {
  const copy = new Map<string, string>();
  let staging: Map<string, string> | undefined;
  return {
    copy,
    apply(event: WatchCertificatesResponse) {
      const e = event.event;
      if (e.case === "snapshot") {
        if (e.value.first) staging = new Map();
        for (const c of e.value.certificates) staging?.set(c.certificateId, c.sha256Thumbprint);
        if (e.value.last && staging !== undefined) {
          copy.clear();
          for (const [k, v] of staging) copy.set(k, v);
          staging = undefined;
        }
      } else if (e.case === "change") {
        for (const id of e.value.deletedCertificateIds) copy.delete(id);
        for (const c of e.value.upserted) copy.set(c.certificateId, c.sha256Thumbprint);
      }
    },
  };
}

async function contents(store: WritableCertificateStore): Promise<Map<string, string>> {
  return new Map((await store.list({ limit: 10_000 })).map((c) => [c.id, c.sha256]));
}

describe("WatchCertificates", () => {
  let store: WritableCertificateStore;
  let service: RunningService;
  beforeAll(async () => {
    store = createMemoryStore();
    for (const [i, c] of certificates.slice(0, 5).entries()) {
      await store.put(`c${i}`, c.der);
    }
    service = await startService(pki, store, { watchPartSize: 2, watchJournalSize: 8 });
  });
  afterAll(async () => {
    await service.close();
    await store.close();
  });

  it("sends the snapshot in parts, a heartbeat, then every change in order", async () => {
    const client = storeClient(service, pki, pki.reader, "grpc");
    const abort = new AbortController();
    const stream = client.watchCertificates({}, { signal: abort.signal })[Symbol.asyncIterator]();
    const next = async () => (await stream.next()).value as WatchCertificatesResponse;
    const parts: WatchCertificatesResponse[] = [];
    for (let e = await next(); e.event.case === "snapshot"; e = await next()) {
      parts.push(e);
      if (e.event.value.last) {
        expect((await next()).event.case).toBe("heartbeat");
        break;
      }
    }
    expect(parts.map((p) => (p.event.case === "snapshot" ? p.event.value.certificates.length : -1))).toEqual([2, 2, 1]);
    expect(parts.map((p) => (p.event.case === "snapshot" ? [p.event.value.first, p.event.value.last] : []))).toEqual([
      [true, false],
      [false, false],
      [false, true],
    ]);
    const first = parts[0] as WatchCertificatesResponse;
    expect(first.storeEpoch).toBe(service.server.service.epoch);
    // Watch events carry thumbprints, not the DER unless asked for.
    expect(first.event.case === "snapshot" && first.event.value.certificates[0]?.der.length).toBe(0);

    await store.put("late", certificates[6]?.der as Uint8Array);
    const put = await next();
    expect(put.event.case === "change" && put.event.value.upserted.map((c) => c.certificateId)).toEqual(["late"]);
    await store.delete("late");
    const deleted = await next();
    expect(deleted.event.case === "change" && deleted.event.value.deletedCertificateIds).toEqual(["late"]);
    expect(deleted.revision).toBe(put.revision + 1n);
    abort.abort();
  });

  it("resumes from a revision with only the missed changes", async () => {
    const client = storeClient(service, pki, pki.reader);
    let abort = new AbortController();
    const first = await readWatch(
      client.watchCertificates({ includeDer: true }, { signal: abort.signal }),
      (e) => e.event.case === "heartbeat",
      abort,
    );
    const mark = first[first.length - 1] as WatchCertificatesResponse;
    expect(first[0]?.event.case === "snapshot" && first[0].event.value.certificates[0]?.der.length).toBeGreaterThan(0);
    await store.put("missed", certificates[7]?.der as Uint8Array);
    await store.delete("missed");
    await store.put("kept", certificates[8]?.der as Uint8Array);
    abort = new AbortController();
    const resumed = await readWatch(
      client.watchCertificates({ sinceRevision: mark.revision, storeEpoch: mark.storeEpoch }, { signal: abort.signal }),
      (e) => e.event.case === "heartbeat",
      abort,
    );
    // The put and the deletion of "missed" stay apart; the deletion and the
    // put of "kept" come merged, at the later revision.
    expect(resumed.map((e) => e.event.case)).toEqual(["change", "change", "heartbeat"]);
    expect(resumed.map((e) => e.revision)).toEqual([mark.revision + 1n, mark.revision + 3n, mark.revision + 3n]);
    const merged = resumed[1]?.event;
    expect(merged?.case === "change" && merged.value.deletedCertificateIds).toEqual(["missed"]);
    expect(merged?.case === "change" && merged.value.upserted.map((c) => c.certificateId)).toEqual(["kept"]);
    await store.delete("kept");
  });

  it.each([
    ["another epoch", (r: WatchCertificatesResponse) => ({ sinceRevision: r.revision, storeEpoch: "another" })],
    [
      "a revision from the future",
      (r: WatchCertificatesResponse) => ({ sinceRevision: r.revision + 100n, storeEpoch: r.storeEpoch }),
    ],
    [
      "a revision the journal forgot",
      (r: WatchCertificatesResponse) => ({ sinceRevision: r.revision, storeEpoch: r.storeEpoch }),
    ],
  ])("refuses to resume from %s: a fresh snapshot instead", async (name, resumeFrom) => {
    const client = storeClient(service, pki, pki.reader);
    let abort = new AbortController();
    const first = await readWatch(
      client.watchCertificates({}, { signal: abort.signal }),
      (e) => e.event.case === "heartbeat",
      abort,
    );
    const mark = first[first.length - 1] as WatchCertificatesResponse;
    if (name === "a revision the journal forgot") {
      // More changes than the journal keeps (8).
      for (let i = 0; i < 6; i++) {
        await store.put(`churn-${i}`, certificates[9]?.der as Uint8Array);
        await store.delete(`churn-${i}`);
      }
    }
    abort = new AbortController();
    const again = await readWatch(
      client.watchCertificates(create(WatchCertificatesRequestSchema, resumeFrom(mark)), { signal: abort.signal }),
      (e) => e.event.case === "heartbeat",
      abort,
    );
    expect(again[0]?.event.case === "snapshot" && again[0].event.value.first).toBe(true);
    const copy = createCopy();
    again.forEach(copy.apply);
    expect(copy.copy).toEqual(await contents(store));
  });

  it("sends heartbeats while the store is quiet", async () => {
    const quiet = await startService(pki, store, { watchHeartbeatMs: 20 });
    try {
      const abort = new AbortController();
      const events = await readWatch(
        storeClient(quiet, pki, pki.reader).watchCertificates({}, { signal: abort.signal }),
        (_, seen) => seen.filter((e) => e.event.case === "heartbeat").length === 3,
        abort,
      );
      expect(events.filter((e) => e.event.case === "change")).toEqual([]);
    } finally {
      await quiet.close();
    }
  });

  it("refuses to send a removed reader anything more: its watch ends with Unauthenticated", async () => {
    const readers = createMemoryStore({ certificates: [pki.reader.der] });
    const guarded = await startService(pki, store, {
      access: { admin: { thumbprints: [] }, reader: { stores: [readers] } },
    });
    try {
      const abort = new AbortController();
      const stream = storeClient(guarded, pki, pki.reader)
        .watchCertificates({}, { signal: abort.signal })
        [Symbol.asyncIterator]();
      for (let e = await stream.next(); e.value?.event.case !== "heartbeat"; e = await stream.next()) {
        expect(e.done).toBe(false);
      }
      await readers.delete(sha256Of(pki.reader));
      await store.put("after-removal", certificates[10]?.der as Uint8Array);
      const error = await stream.next().then(
        (r) => r,
        (e: unknown) => ConnectError.from(e),
      );
      expect(error).toBeInstanceOf(ConnectError);
      expect((error as ConnectError).code).toBe(Code.Unauthenticated);
      abort.abort();
      await store.delete("after-removal");
    } finally {
      await guarded.close();
      await readers.close();
    }
  });

  it("loses and reorders nothing while uploads and deletions race the snapshot", async () => {
    const client = storeClient(service, pki, pki.admin);
    const abort = new AbortController();
    const copy = createCopy();
    let caughtUp = false;
    const watching = (async () => {
      try {
        for await (const event of client.watchCertificates({}, { signal: abort.signal })) {
          copy.apply(event);
          if (event.event.case === "heartbeat") caughtUp = true;
        }
      } catch {
        // Cancelled at the end of the test.
      }
    })();
    const writes: Promise<unknown>[] = [];
    for (let i = 0; i < 30; i++) {
      const id = `race-${i}`;
      writes.push(
        client
          .createCertificate({ certificate: certificates[i % certificates.length]?.der, certificateId: id })
          .then(() => (i % 3 === 0 ? client.deleteCertificate({ certificateId: id }) : undefined)),
      );
    }
    await Promise.all(writes);
    const expected = await contents(store);
    await waitFor(
      () => caughtUp && JSON.stringify([...copy.copy].sort()) === JSON.stringify([...expected].sort()),
      "the watcher's copy to match the store",
    );
    abort.abort();
    await watching;
    for (const id of expected.keys()) {
      if (id.startsWith("race-")) await store.delete(id);
    }
  });
});

describe("watchStream()", () => {
  let store: WritableCertificateStore;
  let journal: WatchJournal;
  afterEach(async () => {
    journal.close();
    await store.close();
  });

  function open(request = create(WatchCertificatesRequestSchema), partSize = 100) {
    const abort = new AbortController();
    const stream = watchStream(request, abort.signal, { store, journal, partSize, heartbeatIntervalMs: 60_000 });
    return {
      abort,
      async next(): Promise<WatchCertificatesResponse> {
        return (await stream.next()).value as WatchCertificatesResponse;
      },
    };
  }

  it("refuses to keep a backlog for a slow watcher: it gets a new snapshot instead", async () => {
    store = createMemoryStore();
    journal = createWatchJournal({ store, maxChanges: 3 });
    const watcher = open();
    expect((await watcher.next()).event.case).toBe("snapshot");
    expect((await watcher.next()).event.case).toBe("heartbeat");
    // The watcher reads nothing while ten changes pass.
    for (let i = 0; i < 10; i++) {
      await store.put(`slow-${i}`, certificates[i]?.der as Uint8Array);
    }
    await journal.settled();
    const next = await watcher.next();
    expect(next.event.case === "snapshot" && next.event.value.first).toBe(true);
    expect(next.event.case === "snapshot" && next.event.value.certificates.length).toBe(10);
    expect((await watcher.next()).event.case).toBe("heartbeat");
    watcher.abort.abort();
  });

  it("admits a quick watcher's changes one by one, with no new snapshot", async () => {
    store = createMemoryStore();
    journal = createWatchJournal({ store, maxChanges: 3 });
    const watcher = open();
    await watcher.next();
    await watcher.next();
    for (let i = 0; i < 5; i++) {
      await store.put(`quick-${i}`, certificates[i]?.der as Uint8Array);
      await journal.settled();
      const event = await watcher.next();
      expect(event.event.case === "change" && event.event.value.upserted[0]?.certificateId).toBe(`quick-${i}`);
    }
    watcher.abort.abort();
  });

  it("turns a batch larger than maxEntryChanges into a new snapshot, reading none of it; a batch at the cap stays a change", async () => {
    store = createMemoryStore();
    const listeners: ((changes: readonly StoreChange[], revision: number) => void)[] = [];
    let gets = 0;
    const batching: WritableCertificateStore = {
      ...store,
      get: (id) => {
        gets++;
        return store.get(id);
      },
      onChanges: (listener) => {
        listeners.push(listener);
        return () => undefined;
      },
    };
    const announce = (ids: string[]) => {
      for (const listener of listeners)
        listener(
          ids.map((id) => ({ kind: "put" as const, id })),
          2,
        );
    };
    journal = createWatchJournal({ store: batching, maxEntryChanges: 3 });
    const watcher = open(undefined, 100);
    expect((await watcher.next()).event.case).toBe("snapshot");
    expect((await watcher.next()).event.case).toBe("heartbeat");
    for (let i = 0; i < 7; i++) await store.put(`big-${i}`, certificates[i]?.der as Uint8Array);
    announce(["big-0", "big-1", "big-2"]);
    await journal.settled();
    expect(gets).toBe(3);
    const change = await watcher.next();
    expect(change.event.case === "change" && change.event.value.upserted.length).toBe(3);
    announce(["big-3", "big-4", "big-5", "big-6"]);
    await journal.settled();
    expect(gets).toBe(3); // the oversized batch was never read into the journal
    expect(journal.since(0)).toBeUndefined();
    const entries = journal.since(journal.head - 1);
    expect(entries?.map((e) => [e.kind, e.kind === "reset" ? e.error : "-"])).toEqual([["reset", undefined]]);
    const snapshot = await watcher.next();
    expect(snapshot.event.case === "snapshot" && snapshot.event.value.first && snapshot.event.value.last).toBe(true);
    expect(snapshot.event.case === "snapshot" && snapshot.event.value.certificates.length).toBe(7);
    expect(snapshot.revision).toBe(BigInt(journal.head));
    watcher.abort.abort();
  });

  it("splits a large change into parts, all but the last at the previous revision", async () => {
    store = createMemoryStore();
    // A store that announces five puts as one batch, as a folder store does
    // when it finds several files at once.
    const listeners: ((changes: readonly StoreChange[], revision: number) => void)[] = [];
    const batching: WritableCertificateStore = {
      ...store,
      onChanges: (listener) => {
        listeners.push(listener);
        return () => undefined;
      },
    };
    journal = createWatchJournal({ store: batching });
    const watcher = open(undefined, 2);
    expect((await watcher.next()).event.case).toBe("snapshot");
    expect((await watcher.next()).event.case).toBe("heartbeat");
    for (let i = 0; i < 5; i++) await store.put(`batch-${i}`, certificates[i]?.der as Uint8Array);
    for (const listener of listeners) {
      listener(
        Array.from({ length: 5 }, (_, i) => ({ kind: "put" as const, id: `batch-${i}` })),
        2,
      );
    }
    await journal.settled();
    const parts = [await watcher.next(), await watcher.next(), await watcher.next()];
    expect(parts.map((p) => (p.event.case === "change" ? p.event.value.upserted.length : -1))).toEqual([2, 2, 1]);
    expect(parts.map((p) => p.revision)).toEqual([1n, 1n, 2n]);
    watcher.abort.abort();
  });
});
