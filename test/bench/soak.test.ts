import { describe, expect, it } from "vitest";
import { formatSoakReport, runSoak } from "../../bench/soak.js";

// `npm run soak` is not run in CI; this short run keeps it working: it
// starts the store service and the API server, changes the store, calls
// with every kind of client, and checks every decision.
describe("runSoak() (npm run soak)", () => {
  it("runs for 3 seconds with no wrong decision and no error, and reports memory", async () => {
    const report = await runSoak({ seconds: 3, rate: 150, changesPerSecond: 4 });
    const text = formatSoakReport(report).join("\n");
    expect(report.wrongDecisions, text).toBe(0);
    expect(report.errors, text).toBe(0);
    expect(report.admitted).toBeGreaterThan(0);
    expect(report.refused).toBeGreaterThan(0);
    expect(report.uploads).toBeGreaterThan(0);
    expect(report.rss.length).toBeGreaterThanOrEqual(2);
    expect(report.rss.some((s) => s.connections > 0 && s.sessions > 0)).toBe(true);
    // No socket or HTTP/2 session outlives its client (new connections, GOAWAYs, malformed requests).
    expect(report.leftover).toEqual({ connections: 0, sessions: 0 });
    expect(report.goaways + report.newConnections).toBeGreaterThan(0);
    expect(text).toMatch(/wrong decisions: 0/);
    expect(text).toMatch(/resident memory slope after warm-up .* certgate [+-]\d+\.\d MB\/min/);
  }, 60_000);
});
