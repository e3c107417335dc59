import { describe, expect, it } from "vitest";
import { createLruCache } from "../../src/core/lru-cache.js";
import { clockOf, positiveInteger } from "../../src/core/options.js";

describe("clockOf()", () => {
  it("admits Date.now itself, epoch numbers and Dates", () => {
    expect(clockOf(undefined)).toBe(Date.now);
    expect(clockOf(() => 5)()).toBe(5);
    expect(clockOf(() => new Date(7))()).toBe(7);
  });
  it("refuses a clock answering something that is not a time, by throwing", () => {
    expect(() => clockOf(() => new Date("nonsense"))()).toThrow(/invalid time/);
    expect(() => clockOf(() => Number.NaN)()).toThrow(/invalid time/);
  });
});

describe("positiveInteger()", () => {
  it("admits integers from min, and the fallback for undefined", () => {
    expect(positiveInteger("x", undefined, 9)).toBe(9);
    expect(positiveInteger("x", 1, 9)).toBe(1);
    expect(positiveInteger("x", 0, 9, 0)).toBe(0);
  });
  it("refuses anything else, naming the option", () => {
    for (const bad of [0, -1, 1.5, Number.NaN, Infinity, "3", 2 ** 60]) {
      expect(() => positiveInteger("certgate: maxThings", bad, 9)).toThrow(
        /certgate: maxThings must be an integer of at least 1/,
      );
    }
  });
});

describe("createLruCache()", () => {
  it("admits up to capacity entries, forgetting the least recently used", () => {
    const cache = createLruCache<string, number>(2);
    cache.set("a", 1);
    cache.set("b", 2);
    expect(cache.get("a")).toBe(1); // now b is the least recently used
    cache.set("c", 3);
    expect([cache.get("a"), cache.get("b"), cache.get("c")]).toEqual([1, undefined, 3]);
    expect(cache.size).toBe(2);
    expect(cache.delete("a")).toBe(true);
    cache.clear();
    expect(cache.size).toBe(0);
  });
  it("peeks without marking an entry as used", () => {
    const cache = createLruCache<string, number>(2);
    cache.set("a", 1);
    cache.set("b", 2);
    expect(cache.peek("a")).toBe(1); // a stays the least recently used
    cache.set("c", 3);
    expect([cache.peek("a"), cache.peek("b"), cache.peek("c")]).toEqual([undefined, 2, 3]);
  });
  it("refuses to keep anything with capacity 0", () => {
    const cache = createLruCache<string, number>(0);
    cache.set("a", 1);
    expect(cache.get("a")).toBeUndefined();
  });
});
