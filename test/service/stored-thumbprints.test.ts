import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { issueDevCertificate, createDevCa, type IssuedCertificate } from "../../src/dev-certificates.js";
import { parseCertificate } from "../../src/core/certificate.js";
import { createMemoryStore } from "../../src/stores/memory-store.js";
import { createStoredThumbprints, type StoredThumbprints } from "../../src/service/stored-thumbprints.js";
import { createWatchJournal, type WatchJournal } from "../../src/service/watch-journal.js";
import type { WritableCertificateStore } from "../../src/core/store.js";

let alice: IssuedCertificate;
let bob: IssuedCertificate;
beforeAll(async () => {
  const ca = await createDevCa({ commonName: "stored thumbprints CA" });
  alice = await issueDevCertificate(ca, { commonName: "alice", usages: ["client"] });
  bob = await issueDevCertificate(ca, { commonName: "bob", usages: ["client"] });
});

let store: WritableCertificateStore;
let journal: WatchJournal;
let thumbprints: StoredThumbprints;
afterEach(async () => {
  thumbprints.close();
  journal.close();
  await store.close();
});

function open(): void {
  store = createMemoryStore();
  journal = createWatchJournal({ store });
  thumbprints = createStoredThumbprints(store, journal);
}

describe("createStoredThumbprints()", () => {
  it("finds by SHA-1 and SHA-256, follows puts and deletes, and keeps a certificate stored under two ids until both are gone", async () => {
    open();
    const a = parseCertificate(alice.der);
    await store.put("a1", alice.der);
    expect((await thumbprints.find(a.sha256))?.id).toBe("a1");
    expect((await thumbprints.find(a.sha1))?.id).toBe("a1");
    await store.put("a2", alice.der);
    await store.delete("a1");
    expect((await thumbprints.find(a.sha256))?.id).toBe("a2");
    expect((await thumbprints.find(a.sha1))?.id).toBe("a2");
    await store.delete("a2");
    expect(await thumbprints.find(a.sha256)).toBeUndefined();
    expect(await thumbprints.find(a.sha1)).toBeUndefined();
  });

  it("does not answer for an id that now holds another certificate", async () => {
    open();
    const a = parseCertificate(alice.der);
    const b = parseCertificate(bob.der);
    await store.put("x", alice.der);
    expect((await thumbprints.find(a.sha256))?.id).toBe("x");
    await store.delete("x");
    await store.put("x", bob.der);
    expect(await thumbprints.find(a.sha256)).toBeUndefined();
    expect((await thumbprints.find(b.sha256))?.sha256).toBe(b.sha256);
  });
});
