import { describe, expect, it } from "vitest";
import { reportTable } from "../../bench/report.js";
import type { SectionResult } from "../../bench/section.js";

const result = (title: string, data: unknown, lines: string[] = []): SectionResult => ({
  title,
  lines,
  warnings: [],
  data,
});

describe("reportTable()", () => {
  it("maps a section's data to its row, with the run's date and machine and the section's name", () => {
    const rows = reportTable(
      [
        {
          name: "new-connection",
          result: result("new-connection: x", {
            connect: [{ variant: "baseline", serverUsPerCall: 1000 }],
            inProcess: { returningUs: 30, firstSeenUs: 70 },
          }),
        },
      ],
      "2026-12-07, 2 cores",
    );
    expect(rows).toHaveLength(3);
    expect(rows[2]).toContain("returning 30.0 µs (+3.0%), first-seen 70.0 µs (+7.0%)");
    expect(rows[2]).toContain("| 2026-12-07, 2 cores | `new-connection` |");
  });

  it("takes the lines judging a target when no row of the table names a section", () => {
    const rows = reportTable(
      [
        {
          name: "new-section",
          result: result("new-section: deletion propagation", {}, ["  median 1.77 ms (target < 1000 ms)", "other"]),
        },
      ],
      "today",
    );
    expect(rows[2]).toContain("| deletion propagation |");
    expect(rows[2]).toContain("median 1.77 ms (target < 1000 ms)");
    expect(rows[2]).not.toContain("other");
  });

  it("reports a failed section as failed, not as a figure", () => {
    const rows = reportTable([{ name: "postgres-store", error: "no database" }], "today");
    expect(rows[2]).toContain("failed: no database");
  });

  it("keeps a cell's pipe from breaking the table", () => {
    const rows = reportTable([{ name: "x", result: result("x: a | b", {}, ["1 | 2 (target 3)"]) }], "today");
    expect(rows[2]).toContain("a \\| b");
    expect(rows[2]).toContain("1 \\| 2 (target 3)");
  });
});
