import { describe, expect, it } from "vitest";
import { createChangeNotifier, isValidCertificateId } from "../../src/index.js";

describe("createChangeNotifier()", () => {
  it("admits listeners, each told the new revision on every change", () => {
    const notifier = createChangeNotifier();
    expect(notifier.revision).toBe(1);
    const heard: [string, number][] = [];
    notifier.onChange((r) => heard.push(["a", r]));
    notifier.onChange((r) => heard.push(["b", r]));
    notifier.changed();
    notifier.changed();
    expect(notifier.revision).toBe(3);
    expect(heard).toEqual([
      ["a", 2],
      ["b", 2],
      ["a", 3],
      ["b", 3],
    ]);
  });

  it("refuses to let a throwing listener keep the others from hearing a change", () => {
    const notifier = createChangeNotifier();
    const heard: number[] = [];
    notifier.onChange(() => {
      throw new Error("listener failed");
    });
    notifier.onChange((r) => heard.push(r));
    expect(() => notifier.changed()).not.toThrow();
    expect(heard).toEqual([2]);
  });

  it("refuses to call a removed listener, or any after clear()", () => {
    const notifier = createChangeNotifier();
    const heard: string[] = [];
    const remove = notifier.onChange(() => heard.push("removed"));
    notifier.onChange(() => heard.push("cleared"));
    remove();
    notifier.changed();
    notifier.clear();
    notifier.changed();
    expect(heard).toEqual(["cleared"]);
    expect(notifier.revision).toBe(3);
  });
});

describe("isValidCertificateId()", () => {
  it("admits letters, digits, dot, underscore and dash, 1 to 128 characters", () => {
    for (const id of ["a", "alice", "alice.pem", "client_01-prod", "A".repeat(128), "0", "-x", "_x", "a..b"]) {
      expect(isValidCertificateId(id)).toBe(true);
    }
  });
  it("refuses paths, hidden files, empty, too long and other characters", () => {
    for (const id of [
      "",
      ".",
      "..",
      ".hidden",
      "../etc/passwd",
      "a/b",
      "a\\b",
      "a b",
      "A".repeat(129),
      "é",
      "a\n",
      "a:b",
    ]) {
      expect(isValidCertificateId(id)).toBe(false);
    }
  });
});
