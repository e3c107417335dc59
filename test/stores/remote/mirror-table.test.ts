import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { createMirrorTable } from "../../../src/stores/remote/mirror-table.js";

const sha = (s: string) => createHash("sha256").update(s).digest("hex").toUpperCase();

describe("createMirrorTable()", () => {
  it("finds each of 10,000 stored ids by thumbprint, in either case, and nothing else", () => {
    const table = createMirrorTable(16);
    for (let i = 0; i < 10_000; i++) expect(table.set(`device-${i}`, sha(`d${i}`), { fleet: `f${i % 3}` })).toBe(true);
    expect(table.size).toBe(10_000);
    for (let i = 0; i < 10_000; i++) {
      expect(table.find(sha(`d${i}`))).toEqual({ id: `device-${i}`, labels: { fleet: `f${i % 3}` } });
    }
    expect(table.find(sha("d123").toLowerCase())?.id).toBe("device-123");
    expect(table.find(sha("absent"))).toBeUndefined();
    expect(table.find("not hex")).toBeUndefined();
  });

  it("forgets deleted ids and keeps finding the others (deletion by backward shift)", () => {
    const table = createMirrorTable(16);
    for (let i = 0; i < 10_000; i++) table.set(`device-${i}`, sha(`d${i}`), {});
    for (let i = 0; i < 10_000; i += 2) expect(table.delete(`device-${i}`)).toBe(true);
    expect(table.delete("device-0")).toBe(false);
    expect(table.size).toBe(5000);
    for (let i = 0; i < 10_000; i++) {
      expect(table.find(sha(`d${i}`))?.id).toBe(i % 2 === 0 ? undefined : `device-${i}`);
    }
    // Freed records and arena space are reused.
    for (let i = 0; i < 10_000; i += 2) table.set(`again-${i}`, sha(`d${i}`), {});
    for (let i = 0; i < 10_000; i += 2) expect(table.find(sha(`d${i}`))?.id).toBe(`again-${i}`);
  });

  it("replaces what an id held, and keeps a certificate stored under two ids until both are gone", () => {
    const table = createMirrorTable();
    table.set("a", sha("one"), { k: "v" });
    table.set("a", sha("two"), {});
    expect(table.find(sha("one"))).toBeUndefined();
    expect(table.find(sha("two"))).toEqual({ id: "a", labels: {} });
    table.set("b", sha("two"), {});
    table.delete("a");
    expect(table.find(sha("two"))?.id).toBe("b");
    table.delete("b");
    expect(table.find(sha("two"))).toBeUndefined();
    expect(table.size).toBe(0);
  });

  it("keeps one frozen object per distinct label set, and stores binary digests", () => {
    const table = createMirrorTable();
    table.set("a", sha("a"), { fleet: "x", model: "m1" });
    table.set("b", sha("b"), { model: "m1", fleet: "x" });
    const a = table.find(sha("a"))!.labels;
    expect(a).toBe(table.find(sha("b"))!.labels);
    expect(Object.isFrozen(a)).toBe(true);
    const digests = Buffer.concat([Buffer.alloc(3), Buffer.from(sha("c"), "hex")]);
    expect(table.setDigest("c", digests, 3, {})).toBe(true);
    expect(table.find(sha("c"))?.id).toBe("c");
    expect(table.setDigest("d", digests, 4, {})).toBe(false);
  });

  it("refuses malformed entries and stores nothing of them", () => {
    const table = createMirrorTable();
    expect(table.set("", sha("x"), {})).toBe(false);
    expect(table.set("é", sha("x"), {})).toBe(false);
    expect(table.set("x".repeat(256), sha("x"), {})).toBe(false);
    expect(table.set("ok", "ABC", {})).toBe(false);
    expect(table.set("ok", `${sha("x").slice(0, 63)}G`, {})).toBe(false);
    expect(table.size).toBe(0);
    expect(table.find(sha("x"))).toBeUndefined();
  });
});
