// Stores that answer from memory decide a new connection without a promise;
// a wrapper that replaces a store's lookup is always asked.
import { beforeAll, describe, expect, it } from "vitest";
import { parseCertificate } from "../../src/core/certificate.js";
import type { PeerCertificate } from "../../src/core/peer-certificate.js";
import type { CertificateStore, StoreVerdict } from "../../src/core/store.js";
import { withSyncLookup } from "../../src/core/sync-lookup.js";
import { createDecisionCore } from "../../src/decision/decision.js";
import { createMemoryStore } from "../../src/stores/memory-store.js";
import { createThumbprintStore } from "../../src/stores/thumbprint-store.js";
import { certificateOf, createTestPki, createTestStore, type TestPki } from "../support/harness.js";

let pki: TestPki;
beforeAll(async () => {
  pki = await createTestPki();
});

const echo = "/certgate.example.v1.EchoService/Echo";
// A new connection of a client never seen: a new Certificate object, so no
// cached decision (decisions are kept per Certificate).
function peerOf(cert: string): PeerCertificate {
  return { certificate: parseCertificate(cert), authorized: false, authorizationError: undefined, encrypted: true };
}

describe("withSyncLookup()", () => {
  it("decides a new connection at once when the store answers from memory", async () => {
    const memory = createMemoryStore();
    await memory.put("alice", pki.alice.der);
    for (const store of [createThumbprintStore(certificateOf(pki.alice).sha256), memory]) {
      const core = createDecisionCore({ store });
      const admitted = core.enforce(peerOf(pki.alice.cert), echo, "gate");
      const refused = core.enforce(peerOf(pki.bob.cert), echo, "gate");
      expect(admitted).not.toBeInstanceOf(Promise);
      expect(refused).not.toBeInstanceOf(Promise);
      expect([(admitted as { kind: string }).kind, (refused as { kind: string }).kind]).toEqual([
        "admitted",
        "refused",
      ]);
    }
  });

  it("waits for a store without one, with the same decisions", async () => {
    const core = createDecisionCore({ store: createTestStore([pki.alice]) });
    const admitted = core.enforce(peerOf(pki.alice.cert), echo, "gate");
    const refused = core.enforce(peerOf(pki.bob.cert), echo, "gate");
    expect(admitted).toBeInstanceOf(Promise);
    expect([(await admitted).kind, (await refused).kind]).toEqual(["admitted", "refused"]);
  });

  it("asks a wrapper that replaces lookup, so a spread store cannot skip the wrapper's checks", async () => {
    const pinned = createThumbprintStore(certificateOf(pki.alice).sha256);
    let asked = 0;
    const denyAll: CertificateStore = {
      ...pinned,
      lookup: () => {
        asked++;
        return Promise.resolve({ kind: "refused", reason: "not_allowed" });
      },
    };
    const core = createDecisionCore({ store: denyAll });
    expect((await core.enforce(peerOf(pki.alice.cert), echo, "gate")).kind).toBe("refused");
    expect(asked).toBe(1);
  });

  it("asks lookup when the twin does not know, and refuses when the twin throws", async () => {
    const alice = certificateOf(pki.alice).sha256;
    let asked = 0;
    const lookup = (certificate: { sha256: string }): Promise<StoreVerdict> => {
      asked++;
      return Promise.resolve(
        certificate.sha256 === alice
          ? { kind: "admitted", entry: { id: "alice" } }
          : { kind: "refused", reason: "not_allowed" },
      );
    };
    const unsure: CertificateStore = {
      ...createTestStore(),
      lookup: withSyncLookup(
        (c) => lookup(c),
        () => undefined,
      ),
    };
    const core = createDecisionCore({ store: unsure });
    const result = core.enforce(peerOf(pki.alice.cert), echo, "gate");
    expect(result).toBeInstanceOf(Promise);
    expect((await result).kind).toBe("admitted");
    expect(asked).toBe(1);

    const broken: CertificateStore = {
      ...createTestStore([pki.alice]),
      lookup: withSyncLookup(
        (c) => lookup(c),
        () => {
          throw new Error("index corrupted");
        },
      ),
    };
    const refused = createDecisionCore({ store: broken }).enforce(peerOf(pki.alice.cert), echo, "gate");
    expect(refused).toMatchObject({ kind: "refused", detail: { reason: "store_unavailable" } });
    expect(asked).toBe(1);
  });
});
