import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { createCertificateIndex } from "../../src/stores/certificate-index.js";
import { createDigestTable } from "../../src/stores/directory/digest-table.js";

const digest = (n: number) => createHash("sha256").update(String(n)).digest();
const latin1 = (n: number) => digest(n).toString("latin1");

describe("createDigestTable()", () => {
  it("admits the digests of each file, in file order, across growth and removals", () => {
    const table = createDigestTable(16);
    const first = table.addFile(7, [latin1(1), latin1(2)]);
    expect(table.size).toBe(2);
    expect(table.ownerOf(first)).toBe(7);
    expect(table.digestOf(table.nextInFile(first))).toBe(latin1(2));
    // Grow past the initial capacity: every digest is still found.
    const files = Array.from({ length: 100 }, (_, i) => table.addFile(100 + i, [latin1(1000 + i)]));
    for (let i = 0; i < 100; i++) expect(table.ownerOf(table.findSha256(digest(1000 + i)))).toBe(100 + i);
    table.removeFile(files[50]!);
    expect(table.findSha256(digest(1050))).toBe(-1);
    expect(table.findSha256(digest(1051))).not.toBe(-1);
    expect(table.size).toBe(101);
    // A freed entry is reused.
    const again = table.addFile(9, [latin1(5)]);
    expect(table.ownerOf(table.findSha256(digest(5)))).toBe(9);
    expect(again).toBeLessThan(102);
  });

  it("refuses look-ups of unknown digests and of digests of another length, and malformed digests", () => {
    const table = createDigestTable();
    table.addFile(1, [latin1(1)]);
    expect(table.findSha256(digest(2))).toBe(-1);
    expect(table.findSha256(digest(1).subarray(0, 20))).toBe(-1);
    expect(() => table.addFile(2, ["short"])).toThrow(TypeError);
  });
});

describe("createCertificateIndex()", () => {
  const entry = (id: string, n: number) => ({
    id,
    sha1: createHash("sha1").update(String(n)).digest("hex").toUpperCase(),
    sha256: digest(n).toString("hex").toUpperCase(),
  });

  it("admits entries by id and by either thumbprint, several ids per certificate", () => {
    const index = createCertificateIndex<ReturnType<typeof entry>>();
    index.set(entry("a", 1));
    index.set(entry("b", 1));
    expect(index.size).toBe(2);
    expect(index.findByThumbprint(entry("x", 1).sha256)?.id).toBe("a");
    expect(index.findByThumbprint(entry("x", 1).sha1)?.id).toBe("a");
    index.delete("a");
    expect(index.findByThumbprint(entry("x", 1).sha256)?.id).toBe("b");
  });

  it("refuses stale thumbprints after an id is replaced or deleted", () => {
    const index = createCertificateIndex<ReturnType<typeof entry>>();
    index.set(entry("a", 1));
    index.set(entry("a", 2));
    expect(index.findByThumbprint(entry("x", 1).sha256)).toBeUndefined();
    expect(index.get("a")?.sha256).toBe(entry("x", 2).sha256);
    expect(index.delete("a")).toBe(true);
    expect(index.delete("a")).toBe(false);
    expect(index.findByThumbprint(entry("x", 2).sha1)).toBeUndefined();
    index.set(entry("c", 3));
    index.clear();
    expect([...index.values()]).toEqual([]);
  });
});
