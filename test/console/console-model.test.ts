// The console's certificate model in Node, against a real service: it loads
// the store, follows its changes, and renews its watch from its revision
// (Connect keeps every event of a call until the call ends, connect-es#1524).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCertificateModel } from "../../console/model.js";
import type { DecisionEvent } from "../../src/core/decision-report.js";
import type { WritableCertificateStore } from "../../src/core/store.js";
import { sha1Of, sha256Of } from "../support/service-harness.js";
import { createMemoryStore } from "../../src/stores/memory-store.js";
import {
  createServicePki,
  startService,
  storeClient,
  type RunningService,
  type ServicePki,
} from "../support/service-harness.js";
import { waitFor } from "../support/harness.js";

let pki: ServicePki;
let store: WritableCertificateStore;
let service: RunningService;
const watchCalls: DecisionEvent[] = [];

beforeAll(async () => {
  pki = await createServicePki();
  store = createMemoryStore();
  await store.put("seed", pki.alice.der);
  service = await startService(pki, store, {
    access: {
      admin: { thumbprints: [sha256Of(pki.admin)] },
      reader: { thumbprints: [sha1Of(pki.reader)] },
      onDecision: (event) => {
        if (event.procedure.endsWith("/WatchCertificates")) watchCalls.push(event);
      },
    },
  });
});

afterAll(async () => {
  await service.close();
  await store.close();
});

describe("createCertificateModel()", () => {
  it("follows every change across watch renewals", async () => {
    const model = createCertificateModel(storeClient(service, pki, pki.reader), 3);
    model.start();
    await waitFor(() => model.loaded && model.byId.has("seed"), "the first load");
    // One change at a time, each seen before the next: one event each.
    const ids = () => [...model.byId.keys()].sort().join();
    for (let i = 0; i < 8; i++) {
      await store.put(`c${i}`, i % 2 === 0 ? pki.bob.der : pki.stranger.der);
      await waitFor(() => model.byId.has(`c${i}`), `c${i} to show`);
      if (i % 3 === 0) {
        await store.delete(`c${i}`);
        await waitFor(() => !model.byId.has(`c${i}`), `c${i} to go`);
      }
    }
    await store.delete("seed");
    await waitFor(() => ids() === "c1,c2,c4,c5,c7", "the model to follow the store");
    // Renewed at least once per three events: more watch calls than one.
    expect(watchCalls.length).toBeGreaterThan(2);
    expect(model.error).toBeUndefined();
  });
});
