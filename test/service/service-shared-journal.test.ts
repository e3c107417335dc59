import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { create } from "@bufbuild/protobuf";
import {
  WatchCertificatesRequestSchema,
  type WatchCertificatesResponse,
} from "../../src/gen/certgate/v1/certificate_store_pb.js";
import { issueDevCertificate, type IssuedCertificate } from "../../src/dev-certificates.js";
import type {
  LoggedChange,
  SharedChangeLog,
  StoredCertificate,
  WritableCertificateStore,
} from "../../src/core/store.js";
import { createMemoryStore } from "../../src/stores/memory-store.js";
import { createSharedJournal } from "../../src/service/shared-journal.js";
import type { WatchJournal } from "../../src/service/watch-journal.js";
import { watchStream } from "../../src/service/watch-stream.js";
import { createServicePki } from "../support/service-harness.js";

let certificates: IssuedCertificate[];

beforeAll(async () => {
  const pki = await createServicePki();
  certificates = await Promise.all(
    Array.from({ length: 6 }, (_, i) => issueDevCertificate(pki.ca, { commonName: `shared-${i}`, usages: ["client"] })),
  );
});

/** A shared change log driven by the test, over a memory store holding the same certificates. */
function createLog(store: WritableCertificateStore) {
  const listeners = new Set<(change: LoggedChange) => void>();
  const history: LoggedChange[] = [];
  const log: SharedChangeLog & { emit(change: LoggedChange): void } = {
    epoch: "test-epoch",
    head: 0,
    state: "connected",
    onLogged(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async changesSince(revision, until, limit) {
      const found = history.filter((c) => c.revision > revision && c.revision <= until);
      return found.length > limit ? undefined : found;
    },
    onState: () => () => undefined,
    emit(change) {
      history.push(change);
      (log as { head: number }).head = change.revision;
      for (const listener of listeners) listener(change);
    },
  };
  return { log, listeners, store };
}

async function putAll(store: WritableCertificateStore, from: number, to: number): Promise<StoredCertificate[]> {
  const out: StoredCertificate[] = [];
  for (let i = from; i < to; i++) out.push(await store.put(`c-${i}`, certificates[i]!.der));
  return out;
}

describe("createSharedJournal()", () => {
  let store: WritableCertificateStore;
  let journal: WatchJournal;
  afterEach(async () => {
    journal.close();
    await store.close();
  });

  it("keeps a revision of at most maxEntryChanges certificates as a change", async () => {
    store = createMemoryStore();
    const { log } = createLog(store);
    journal = createSharedJournal(log, 100, 3);
    log.emit({ revision: 1, upserted: await putAll(store, 0, 2), deleted: ["gone"] });
    const entries = journal.since(0);
    expect(entries?.map((e) => e.kind)).toEqual(["change"]);
    expect(entries?.[0]?.kind === "change" && entries[0].upserted.map((c) => c.id)).toEqual(["c-0", "c-1"]);
  });

  it("turns a larger revision into a reset that holds none of it, and a watcher into a new snapshot", async () => {
    store = createMemoryStore();
    const { log } = createLog(store);
    journal = createSharedJournal(log, 100, 3);
    const abort = new AbortController();
    const stream = watchStream(create(WatchCertificatesRequestSchema), abort.signal, {
      store,
      journal,
      partSize: 100,
      heartbeatIntervalMs: 60_000,
    });
    const next = async () => (await stream.next()).value as WatchCertificatesResponse;
    expect((await next()).event.case).toBe("snapshot");
    expect((await next()).event.case).toBe("heartbeat");
    log.emit({ revision: 1, upserted: await putAll(store, 0, 4), deleted: [] });
    const entries = journal.since(0);
    expect(entries).toEqual([{ kind: "reset", revision: 1, error: undefined }]);
    const snapshot = await next();
    expect(snapshot.event.case === "snapshot" && snapshot.event.value.first && snapshot.event.value.last).toBe(true);
    expect(snapshot.event.case === "snapshot" && snapshot.event.value.certificates.map((c) => c.certificateId)).toEqual(
      ["c-0", "c-1", "c-2", "c-3"],
    );
    expect(snapshot.revision).toBe(1n);
    abort.abort();
  });

  it("resumes from the shared log with the missed changes, but sends a snapshot for a change over the cap", async () => {
    store = createMemoryStore();
    const { log } = createLog(store);
    // An older history, from before this replica's journal started.
    log.emit({ revision: 1, upserted: await putAll(store, 0, 1), deleted: [] });
    log.emit({ revision: 2, upserted: await putAll(store, 1, 2), deleted: [] });
    log.emit({ revision: 3, upserted: await putAll(store, 2, 6), deleted: [] });
    journal = createSharedJournal(log, 100, 3);
    expect(await journal.resume!(1)).toBeUndefined();
    expect(journal.since(3)).toEqual([]);
    const small = createSharedJournal(log, 100, 4);
    try {
      const resumed = await small.resume!(1);
      expect(resumed?.entries.map((e) => (e.kind === "change" ? e.upserted.length : e.kind))).toEqual([1, 4]);
    } finally {
      small.close();
    }
  });

  it("refuses a cap that is not a positive integer", () => {
    store = createMemoryStore();
    const { log } = createLog(store);
    journal = createSharedJournal(log, 100);
    expect(() => createSharedJournal(log, 100, 0)).toThrow("journal entry size must be a positive integer, got 0");
    expect(() => createSharedJournal(log, 100, 1.5)).toThrow(TypeError);
  });
});
