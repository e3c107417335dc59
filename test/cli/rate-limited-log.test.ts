import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { createRateLimitedLog } from "../../src/cli/rate-limited-log.js";

// Fake timers: the intervals pass without waiting.
beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe("createRateLimitedLog()", () => {
  it("writes the first lines of an interval, counts the rest, and ends the interval with one summary line", () => {
    const lines: string[] = [];
    const log = createRateLimitedLog((line) => lines.push(line), { limit: 3, intervalMs: 10_000, what: "refusals" });
    for (let i = 0; i < 1000; i++) log.log(`refused ${i}`);
    expect(lines).toEqual(["refused 0", "refused 1", "refused 2"]);
    vi.advanceTimersByTime(9_999);
    expect(lines).toHaveLength(3);
    vi.advanceTimersByTime(1);
    expect(lines.at(-1)).toBe("997 more refusals in the last 10 s");
    // A new interval writes again.
    log.log("refused later");
    expect(lines.at(-1)).toBe("refused later");
    vi.advanceTimersByTime(10_000);
    expect(lines.at(-1)).toBe("refused later"); // nothing held back, no summary
    log.close();
  });

  it("writes every line while under the limit, and the held-back count on close", () => {
    const lines: string[] = [];
    const log = createRateLimitedLog((line) => lines.push(line), { limit: 2, intervalMs: 1500, what: "refusals" });
    log.log("a");
    log.log("b");
    expect(lines).toEqual(["a", "b"]);
    log.log("c");
    log.close();
    expect(lines).toEqual(["a", "b", "1 more refusals in the last 1.5 s"]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("keeps only the summaries with a limit of 0", () => {
    const lines: string[] = [];
    const log = createRateLimitedLog((line) => lines.push(line), { limit: 0, intervalMs: 60_000, what: "refusals" });
    log.log("x");
    log.log("y");
    expect(lines).toEqual([]);
    vi.advanceTimersByTime(60_000);
    expect(lines).toEqual(["2 more refusals in the last 60 s"]);
  });
});
