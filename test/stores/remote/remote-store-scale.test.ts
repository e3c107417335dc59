import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { Code, ConnectError } from "@connectrpc/connect";
import { parseCertificate, type Certificate } from "../../../src/core/certificate.js";
import type { WritableCertificateStore } from "../../../src/core/store.js";
import { syncLookupOf } from "../../../src/core/sync-lookup.js";
import { createMemoryStore } from "../../../src/stores/memory-store.js";
import { createRemoteStore, type RemoteStore, type RemoteStoreOptions } from "../../../src/stores/remote-store.js";
import { templates, variant } from "../../../bench/directory-store.js";
import { waitFor } from "../../support/harness.js";
import {
  createServicePki,
  readWatch,
  serviceTransport,
  startService,
  storeClient,
  type RunningService,
  type ServicePki,
} from "../../support/service-harness.js";

const count = 10_000;
let pki: ServicePki;
let ders: Uint8Array[];
let certificates: Certificate[];
const idOf = (i: number) => `device-${String(i).padStart(5, "0")}`;
const labelsOf = (i: number) => ({ fleet: `fleet-${i % 4}` });

beforeAll(async () => {
  pki = await createServicePki();
  const dies = await templates();
  ders = Array.from({ length: count + 1 }, (_, i) => variant(dies[i % dies.length]!, i + 1));
  certificates = ders.map((der) => parseCertificate(der));
}, 60_000);

const opened: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (opened.length > 0) await opened.pop()?.();
});

// A memory store with certificates 0..count-1 (certificate `count` is never stored).
async function filledStore(): Promise<WritableCertificateStore> {
  const store = createMemoryStore();
  opened.push(() => store.close());
  for (let i = 0; i < count; i++) await store.put(idOf(i), ders[i]!, { labels: labelsOf(i) });
  return store;
}

async function service(store: WritableCertificateStore): Promise<RunningService> {
  const running = await startService(pki, store, { watchHeartbeatMs: 200 });
  opened.push(() => running.close());
  return running;
}

function mirrorOf(running: { url: string }, options: Partial<RemoteStoreOptions> = {}): RemoteStore {
  const remote = createRemoteStore({
    transport: serviceTransport(running, pki, pki.reader, "grpc"),
    reconnectDelayMs: 20,
    maxReconnectDelayMs: 200,
    syncTimeoutMs: 20_000,
    ...options,
  });
  opened.push(() => remote.close());
  return remote;
}

function verdictOf(remote: RemoteStore, i: number): string {
  return syncLookupOf(remote)!(certificates[i]!)?.kind ?? "pending";
}

describe("createRemoteStore() mirror at 10,000 certificates", () => {
  it("admits every stored certificate after the snapshot, with its id and labels, and refuses one not stored", async () => {
    const running = await service(await filledStore());
    const remote = mirrorOf(running);
    await remote.ready(20_000);
    const signal = new AbortController().signal;
    for (let i = 0; i < count; i++) {
      const verdict = await remote.lookup(certificates[i]!, signal);
      if (verdict.kind !== "admitted") throw new Error(`certificate ${i}: ${verdict.kind}`);
      if (verdict.entry.id !== idOf(i) || verdict.entry.labels?.fleet !== labelsOf(i).fleet) {
        throw new Error(`certificate ${i}: entry ${JSON.stringify(verdict.entry)}`);
      }
    }
    const stranger = await remote.lookup(certificates[count]!, signal);
    expect(stranger).toEqual({ kind: "refused", reason: "not_allowed" });
  });

  it("refuses deleted certificates and still admits the others after deletions", async () => {
    const store = await filledStore();
    const running = await service(store);
    const remote = mirrorOf(running);
    await remote.ready(20_000);
    for (let i = 0; i < count; i += 100) await store.delete(idOf(i));
    await waitFor(() => verdictOf(remote, count - 100) === "refused", "the last deletion on the mirror");
    for (let i = 0; i < count; i++) expect(verdictOf(remote, i)).toBe(i % 100 === 0 ? "refused" : "admitted");
  });

  it("fetches the DER and labels of a certificate on demand, and says not_found for an unknown id", async () => {
    const running = await service(await filledStore());
    const remote = mirrorOf(running);
    await remote.ready(20_000);
    const found = await remote.getCertificate(idOf(4321));
    expect(found.kind).toBe("found");
    if (found.kind !== "found") return;
    expect(Buffer.from(found.certificate.der).equals(Buffer.from(ders[4321]!))).toBe(true);
    expect(found.certificate.labels).toEqual(labelsOf(4321));
    expect(found.certificate.sha256).toBe(certificates[4321]!.sha256);
    expect(found.certificate.subject).toContain("client");
    expect(await remote.getCertificate("device-99999")).toEqual({ kind: "not_found" });
    const bad = await remote.getCertificate("../etc");
    expect(bad.kind).toBe("error");
  });

  it("fetches on demand in lookup mode too, and refuses a certificate not stored", async () => {
    const running = await service(await filledStore());
    const remote = mirrorOf(running, { mode: "lookup" });
    const found = await remote.getCertificate(idOf(12));
    expect(found.kind === "found" && found.certificate.labels).toEqual(labelsOf(12));
    const signal = new AbortController().signal;
    expect((await remote.lookup(certificates[12]!, signal)).kind).toBe("admitted");
    expect((await remote.lookup(certificates[count]!, signal)).kind).toBe("refused");
  });

  it("answers error on demand while the store behind the service fails, and decisions go on from memory", async () => {
    const store = await filledStore();
    let down = false;
    const failing = new Proxy(store, {
      get(target, property) {
        if (property === "get" && down) return async () => Promise.reject(new Error("database down"));
        const value = Reflect.get(target, property, target) as unknown;
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    const running = await service(failing);
    const remote = mirrorOf(running);
    await remote.ready(20_000);
    down = true;
    const result = await remote.getCertificate(idOf(7));
    expect(result.kind).toBe("error");
    expect(ConnectError.from((result as { error: unknown }).error).code).not.toBe(Code.NotFound);
    expect(verdictOf(remote, 7)).toBe("admitted");
    expect(verdictOf(remote, count)).toBe("refused");
    expect(remote.state).toBe("synced");
  });

  it("answers error on demand within its deadline when the service is down, while the stale mirror still decides", async () => {
    const running = await service(await filledStore());
    const remote = mirrorOf(running, { maxStaleMs: 60_000, requestTimeoutMs: 500 });
    await remote.ready(20_000);
    await running.close();
    await waitFor(() => remote.state === "stale", "the mirror to notice");
    const result = await remote.getCertificate(idOf(7));
    expect(result.kind).toBe("error");
    expect(verdictOf(remote, 7)).toBe("admitted");
    expect(verdictOf(remote, count)).toBe("refused");
  });

  it("brings a burst of 5,000 deletions to each of four mirrors with none missed", async () => {
    const store = await filledStore();
    const running = await service(store);
    const mirrors = Array.from({ length: 4 }, () => mirrorOf(running));
    await Promise.all(mirrors.map((m) => m.ready(20_000)));
    for (let i = 0; i < count; i += 2) await store.delete(idOf(i));
    for (const [n, mirror] of mirrors.entries()) {
      await waitFor(() => verdictOf(mirror, count - 2) === "refused", `mirror ${n} to apply the burst`, 30_000);
      let wrong = 0;
      for (let i = 0; i < count; i++) if (verdictOf(mirror, i) !== (i % 2 === 0 ? "refused" : "admitted")) wrong++;
      expect(wrong).toBe(0);
    }
  }, 60_000);

  it("sends a compact snapshot (ids, packed digests, label sets) only to a watch that asks for one", async () => {
    const running = await service(await filledStore());
    const client = storeClient(running, pki, pki.reader);
    const parts = (compactSnapshot: boolean) => {
      const abort = new AbortController();
      return readWatch(
        client.watchCertificates({ compactSnapshot }, { signal: abort.signal }),
        (event) => event.event.case === "heartbeat",
        abort,
      );
    };
    const compact = (await parts(true)).flatMap((e) => (e.event.case === "snapshot" ? [e.event.value] : []));
    expect(compact.flatMap((p) => p.certificates)).toHaveLength(0);
    const ids = compact.flatMap((p) => p.certificateIds);
    expect(ids).toHaveLength(count);
    const first = compact[0]!;
    expect(Buffer.from(first.sha256Digests.subarray(0, 32)).toString("hex").toUpperCase()).toBe(
      certificates[0]!.sha256,
    );
    expect(first.labelSets[first.labelSetIndexes[0]! - 1]?.labels).toEqual(labelsOf(0));
    const full = (await parts(false)).flatMap((e) => (e.event.case === "snapshot" ? e.event.value.certificates : []));
    expect(full).toHaveLength(count);
    expect(full[0]?.sha256Thumbprint).toBe(certificates[0]!.sha256);
  });
});
