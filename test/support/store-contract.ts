// The WritableCertificateStore contract that the certificate store service
// relies on, as a suite any store can run (see test/stores/service-store-contract.test.ts).
import { afterEach, beforeAll, expect, it } from "vitest";
import { Code } from "@connectrpc/connect";
import { parseCertificate, type Certificate } from "../../src/core/certificate.js";
import { createDevCa, issueDevCertificate, type IssuedCertificate } from "../../src/dev-certificates.js";
import type { StoreChange, WritableCertificateStore } from "../../src/core/store.js";
import { codeOf } from "./service-harness.js";

/**
 * MakeStore opens an empty store of the kind under test, holding `initial`
 * (DER) each under its SHA-256 thumbprint.
 */
export type MakeStore = (initial?: Uint8Array[]) => Promise<WritableCertificateStore>;

/**
 * storeContract registers the contract's cases in the current describe block.
 */
export function storeContract(make: MakeStore): void {
  let ca: IssuedCertificate;
  let alice: IssuedCertificate;
  let bob: IssuedCertificate;
  let aliceCertificate: Certificate;
  beforeAll(async () => {
    ca = await createDevCa();
    alice = await issueDevCertificate(ca, { commonName: "alice" });
    bob = await issueDevCertificate(ca, { commonName: "bob" });
    aliceCertificate = parseCertificate(alice.der);
  });

  const signal = new AbortController().signal;
  let store: WritableCertificateStore;
  afterEach(() => store?.close());

  it("admits a stored certificate by SHA-256, under any id, with its labels", async () => {
    store = await make();
    const stored = await store.put("alice-1", alice.der, { labels: { team: "a" } });
    expect(stored).toMatchObject({ id: "alice-1", sha256: aliceCertificate.sha256, sha1: aliceCertificate.sha1 });
    expect(await store.lookup(aliceCertificate, signal)).toMatchObject({
      kind: "admitted",
      entry: { id: "alice-1", thumbprint: aliceCertificate.sha256, labels: { team: "a" } },
    });
    // A certificate that shares only the SHA-1 thumbprint is another certificate (a SHA-1 collision): refused.
    const sha1Only = { ...aliceCertificate, sha256: "0".repeat(64) };
    expect(await store.lookup(sha1Only, signal)).toEqual({ kind: "refused", reason: "not_allowed" });
    await store.put("alice-2", alice.der);
    await store.delete("alice-1");
    expect(await store.lookup(aliceCertificate, signal)).toMatchObject({ kind: "admitted", entry: { id: "alice-2" } });
  });

  it("refuses a certificate once deleted, and one never stored", async () => {
    store = await make([alice.der]);
    expect((await store.lookup(aliceCertificate, signal)).kind).toBe("admitted");
    await store.delete(aliceCertificate.sha256);
    expect(await store.lookup(aliceCertificate, signal)).toEqual({ kind: "refused", reason: "not_allowed" });
    expect((await store.lookup(parseCertificate(bob.der), signal)).kind).toBe("refused");
  });

  it("announces every change with a new revision, before the write resolves", async () => {
    store = await make();
    const heard: [readonly StoreChange[], number][] = [];
    const revisions: number[] = [];
    store.onChanges((changes, revision) => heard.push([changes, revision]));
    const remove = store.onChange((revision) => revisions.push(revision));
    const start = store.revision;
    await store.put("a", alice.der);
    expect(heard).toEqual([[[{ kind: "put", id: "a" }], start + 1]]);
    await store.delete("a");
    expect(heard[1]).toEqual([[{ kind: "delete", id: "a" }], start + 2]);
    expect(revisions).toEqual([start + 1, start + 2]);
    remove();
    await store.put("b", bob.der);
    expect(revisions).toEqual([start + 1, start + 2]);
    expect(store.revision).toBe(start + 3);
  });

  it("lists by id in code unit order, after a given id, at most limit", async () => {
    store = await make();
    for (const id of ["b", "A", "a-1", "a", "_z", "0"]) await store.put(id, id === "a" ? bob.der : alice.der);
    const all = (await store.list({ limit: 100 })).map((c) => c.id);
    expect(all).toEqual(["0", "A", "_z", "a", "a-1", "b"]);
    expect((await store.list({ after: "A", limit: 2 })).map((c) => c.id)).toEqual(["_z", "a"]);
    expect((await store.list({ after: "a-0", limit: 10 })).map((c) => c.id)).toEqual(["a-1", "b"]);
    expect(await store.list({ after: "b", limit: 10 })).toEqual([]);
    expect((await store.get("a"))?.sha256).toBe(parseCertificate(bob.der).sha256);
    expect(await store.get("nope")).toBeUndefined();
  });

  it("refuses bad ids, taken ids, unknown ids and anything but exactly one DER certificate", async () => {
    store = await make();
    await store.put("taken", alice.der);
    const before = store.revision;
    for (const id of ["", "../x", "a/b", ".x", "x".repeat(129)]) {
      expect(await codeOf(store.put(id, alice.der))).toBe(Code.InvalidArgument);
    }
    expect(await codeOf(store.put("taken", bob.der))).toBe(Code.AlreadyExists);
    expect(await codeOf(store.delete("unknown"))).toBe(Code.NotFound);
    expect(await codeOf(store.put("pem", Buffer.from(alice.cert)))).toBe(Code.InvalidArgument);
    expect(await codeOf(store.put("trailing", Buffer.concat([alice.der, Buffer.from([0])])))).toBe(
      Code.InvalidArgument,
    );
    expect(await codeOf(store.put("garbage", new Uint8Array([0x30, 3, 1, 2, 3])))).toBe(Code.InvalidArgument);
    expect(store.revision).toBe(before);
    expect((await store.list({ limit: 10 })).map((c) => c.id)).toEqual(["taken"]);
  });

  it("refuses every lookup and write after close()", async () => {
    store = await make([alice.der]);
    await store.close();
    expect((await store.lookup(aliceCertificate, signal)).kind).toBe("error");
    expect(await codeOf(store.put("x", bob.der))).toBe(Code.Unavailable);
  });
}
