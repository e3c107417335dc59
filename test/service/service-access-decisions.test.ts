import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code } from "@connectrpc/connect";
import type { DecisionEvent } from "../../src/index.js";
import type { WritableCertificateStore } from "../../src/core/store.js";
import { createMemoryStore } from "../../src/stores/memory-store.js";
import {
  codeOf,
  createServicePki,
  sha1Of,
  sha256Of,
  startService,
  storeClient,
  type RunningService,
  type ServicePki,
} from "../support/service-harness.js";

// The store service's gate and its fast refusal path share one decision per
// call: each role's decision reads the clock once, so a call decided twice
// reads it twice as often.

let pki: ServicePki;
let store: WritableCertificateStore;
let service: RunningService;
let clockReads = 0;
const events: DecisionEvent[] = [];

beforeAll(async () => {
  pki = await createServicePki();
  store = createMemoryStore();
  await store.put("seed", pki.alice.der);
  service = await startService(pki, store, {
    access: {
      admin: { thumbprints: [sha256Of(pki.admin)] },
      reader: { thumbprints: [sha1Of(pki.reader)] },
      clock: () => {
        clockReads++;
        return Date.now();
      },
      onDecision: (e) => events.push(e),
    },
  });
});
afterAll(async () => {
  await service?.close();
  await store?.close();
});

// Clock reads and reported decisions of `count` calls on one connection,
// after two warm-up calls (the connection's first decision, the learning of
// the path).
async function measure(call: () => Promise<unknown>, count: number) {
  await call();
  await call();
  const reads = clockReads;
  const reported = events.length;
  for (let i = 0; i < count; i++) await call();
  return { reads: clockReads - reads, reported: events.length - reported };
}

describe("createCertificateStoreServer() access decisions", () => {
  it("decides an admin's admitted call once: one role look-up, one report", async () => {
    const admin = storeClient(service, pki, pki.admin);
    const measured = await measure(() => admin.getCertificate({ certificateId: "seed" }), 10);
    expect(measured).toEqual({ reads: 10, reported: 10 });
    expect(events.at(-1)).toMatchObject({ kind: "admitted", via: "gate" });
  });

  it("decides a reader's admitted call once: the admin role, then the reader role", async () => {
    const reader = storeClient(service, pki, pki.reader);
    const measured = await measure(() => reader.getCertificate({ certificateId: "seed" }), 10);
    expect(measured).toEqual({ reads: 20, reported: 10 });
  });

  it("refuses a reader's write as before, reported once per call", async () => {
    const reader = storeClient(service, pki, pki.reader);
    const refusal = async () => {
      expect(await codeOf(reader.deleteCertificate({ certificateId: "seed" }))).toBe(Code.PermissionDenied);
    };
    const measured = await measure(refusal, 5);
    expect(measured.reported).toBe(5);
    expect(events.at(-1)).toMatchObject({ kind: "refused", reason: "permission_denied" });
    expect(await store.get("seed")).toBeDefined();
  });
});
