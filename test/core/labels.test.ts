import { describe, expect, it } from "vitest";
import { checkLabels, defaultLabelLimits } from "../../src/core/labels.js";
import { createMemoryStore } from "../../src/stores/memory-store.js";
import { issueDevCertificate, createDevCa } from "../../src/dev-certificates.js";

describe("checkLabels()", () => {
  it("admits plain labels within the limits, and an empty map", () => {
    expect(checkLabels({})).toBeUndefined();
    expect(checkLabels({ team: "payments", "k8s.io/name": "x", a_b: "c-d", "9": "" })).toBeUndefined();
    expect(checkLabels({ note: "zürich 🚀 ü" })).toBeUndefined();
    expect(checkLabels({ k: "x".repeat(defaultLabelLimits.maxValueLength) })).toBeUndefined();
    expect(checkLabels(Object.fromEntries(Array.from({ length: 64 }, (_, i) => [`k${i}`, "v"])))).toBeUndefined();
  });

  it("refuses what is not a plain object of strings", () => {
    for (const labels of [null, undefined, "x", 1, ["a"], { k: 1 }, { k: undefined }]) {
      expect(checkLabels(labels)?.kind).toBe("invalid");
    }
    // Inherited labels would be dropped by a copy: refused, not lost.
    expect(checkLabels(Object.create({ team: "a" }) as object)?.message).toMatch(/plain object/);
    // An accessor is never called.
    let called = false;
    const getter = Object.defineProperty({}, "k", {
      enumerable: true,
      get: () => {
        called = true;
        return "v";
      },
    });
    expect(checkLabels(getter)?.kind).toBe("invalid");
    expect(called).toBe(false);
  });

  it("refuses a __proto__ key instead of dropping it, and other malformed keys", () => {
    const raw = JSON.parse('{"__proto__":"x"}') as object;
    expect(Object.keys(raw)).toEqual(["__proto__"]);
    expect(checkLabels(raw)?.message).toMatch(/invalid label key "__proto__"/);
    const hidden = Object.defineProperty({}, "hidden", { value: "x", enumerable: false });
    expect(checkLabels(hidden)).toBeUndefined(); // a well-formed key, even non-enumerable, is a label like any
    for (const key of ["", "_x", ".x", "-x", "a b", "a:b", "x".repeat(64), "é"]) {
      expect(checkLabels({ [key]: "v" })?.kind, key).toBe("invalid");
    }
    expect(checkLabels({ [Symbol("s")]: "v" })?.kind).toBe("invalid");
  });

  it.each([
    ["NUL", "\u0000"],
    ["a newline", "a\nb"],
    ["a carriage return", "a\rb"],
    ["DEL", "\u007f"],
    ["a C1 control (NEL)", "\u0085"],
    ["the line separator U+2028", "a\u2028b"],
    ["the paragraph separator U+2029", "a\u2029b"],
    ["LRE U+202A", "\u202a"],
    ["RLO U+202E", "admin\u202egnp.exe"],
    ["LRI U+2066", "\u2066"],
    ["PDI U+2069", "\u2069"],
    ["the right-to-left mark U+200F", "\u200f"],
    ["the Arabic letter mark U+061C", "\u061c"],
  ])("refuses a value with %s", (_, value) => {
    expect(checkLabels({ note: value })?.kind).toBe("invalid");
  });

  it("refuses private key text as a private key, and values or maps over the limits", () => {
    expect(checkLabels({ note: "-----BEGIN PRIVATE KEY-----" })?.kind).toBe("private_key");
    expect(checkLabels({ note: "PuTTY-User-Key-File-3: ssh-ed25519" })?.kind).toBe("private_key");
    expect(checkLabels({ k: "x".repeat(257) })?.message).toMatch(/at most 256 characters/);
    expect(checkLabels(Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, "v"])))?.message).toMatch(
      /at most 64/,
    );
    expect(checkLabels({ a: "v", b: "v" }, { maxLabels: 1, maxValueLength: 10 })?.message).toMatch(/at most 1/);
  });
});

describe("createMemoryStore() labels", () => {
  it("stores labels that pass and refuses the rest with InvalidArgument, storing nothing", async () => {
    const ca = await createDevCa();
    const alice = await issueDevCertificate(ca, { commonName: "alice" });
    const store = createMemoryStore();
    try {
      await expect(store.put("a", alice.der, { labels: { note: "a\u202eb" } })).rejects.toMatchObject({ code: 3 });
      await expect(
        store.put("a", alice.der, { labels: JSON.parse('{"__proto__":"x"}') as Record<string, string> }),
      ).rejects.toMatchObject({ code: 3 });
      expect(await store.get("a")).toBeUndefined();
      expect((await store.put("a", alice.der, { labels: { team: "payments" } })).labels).toEqual({ team: "payments" });
    } finally {
      await store.close();
    }
  });
});
