// The PostgreSQL replica's in-memory copy: thumbprint to id and labels,
// nothing more, with label sets shared between certificates.
import { describe, expect, it } from "vitest";
import { createReplicaCopy } from "../../../src/stores/postgres/replica-copy.js";

const sha = (n: number) => n.toString(16).toUpperCase().padStart(64, "A");

describe("createReplicaCopy()", () => {
  it("finds ids and labels by SHA-256 thumbprint, and forgets removed ones", () => {
    const copy = createReplicaCopy();
    for (let i = 0; i < 10_000; i++) copy.set(`device-${i}`, sha(i), { site: `s${i % 10}` });
    expect(copy.size).toBe(10_000);
    expect(copy.findBySha256(sha(4242))).toEqual({ id: "device-4242", labels: { site: "s2" } });
    // Certificates with the same labels share one frozen label object.
    expect(copy.findBySha256(sha(2))!.labels).toBe(copy.findBySha256(sha(12))!.labels);
    expect(Object.isFrozen(copy.findBySha256(sha(2))!.labels)).toBe(true);
    expect(copy.remove("device-4242")).toBe(true);
    expect(copy.remove("device-4242")).toBe(false);
    expect(copy.findBySha256(sha(4242))).toBeUndefined();
    expect(copy.findBySha256("not hex")).toBeUndefined();
    expect(copy.size).toBe(9_999);
  });

  it("replaces an id's certificate or labels, and keeps a certificate stored under two ids until both are gone", () => {
    const copy = createReplicaCopy();
    expect(copy.set("a", sha(1), {})).toBe(true);
    expect(copy.set("a", sha(1), {})).toBe(false);
    expect(copy.set("a", sha(2), { team: "x" })).toBe(true);
    expect(copy.findBySha256(sha(1))).toBeUndefined();
    expect(copy.findBySha256(sha(2))).toEqual({ id: "a", labels: { team: "x" } });
    copy.set("b", sha(2), {});
    copy.remove("a");
    expect(copy.findBySha256(sha(2))?.id).toBe("b");
    copy.remove("b");
    expect(copy.findBySha256(sha(2))).toBeUndefined();
  });

  it("applies logged changes and, replaced whole, reports the difference", () => {
    const copy = createReplicaCopy();
    copy.set("keep", sha(1), {});
    copy.set("gone", sha(2), {});
    copy.set("relabel", sha(3), { a: "1" });
    const fresh = createReplicaCopy();
    fresh.set("keep", sha(1), {});
    fresh.set("relabel", sha(3), { a: "2" });
    fresh.set("new", sha(4), {});
    const changes = copy.replace(fresh);
    expect(changes).toEqual(
      expect.arrayContaining([
        { kind: "put", id: "relabel" },
        { kind: "put", id: "new" },
        { kind: "delete", id: "gone" },
      ]),
    );
    expect(changes).toHaveLength(3);
    expect(copy.findBySha256(sha(2))).toBeUndefined();
    expect(copy.findBySha256(sha(3))?.labels).toEqual({ a: "2" });
  });
});
