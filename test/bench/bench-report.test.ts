import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { measuredOn, type ReportedSection, reportTable } from "../../bench/report.js";
import { reportRows } from "../../bench/report-rows.js";
import type { SectionResult } from "../../bench/section.js";

const result = (title: string, data: unknown, lines: string[] = [], warnings: string[] = []): SectionResult => ({
  title,
  lines,
  warnings,
  data,
});

// The figure cells of the rows a run of these sections prints.
function figures(sections: ReportedSection[]): string[] {
  return reportTable(sections, "today")
    .slice(2)
    .map((row) => row.split(" | ")[2] ?? "");
}
const figuresOf = (name: string, data: unknown, lines: string[] = []) =>
  figures([{ name, result: result(`${name}: x`, data, lines) }]);

const ab = (name: string, median: number, min = median, max = median) => ({
  variant: name,
  serverUsPerCall: 100,
  cpuRatio: { median, min, max },
  rateRatio: { median, min, max },
});

describe("reportTable()", () => {
  it("prints BENCHMARKS.md's rows, in its order and wording, with the sections they name", () => {
    const text = readFileSync(new URL("../../BENCHMARKS.md", import.meta.url), "utf8");
    // The summary table: from its header to the first line that is not a row.
    const start = text.indexOf("| what is measured |");
    const table = text
      .slice(start, text.indexOf("\n\n", start))
      .split("\n")
      .slice(2)
      .map((l) => l.slice(2, -2).split(" | "))
      .filter((cells) => cells[4] !== "`npm run soak`");
    const specs = reportRows(() => []);
    expect(specs.map((s) => [s.measured, s.target, s.sections.map((n) => `\`${n}\``).join(", ")])).toEqual(
      table.map((cells) => [cells[0], cells[1], cells[4]]),
    );
  });

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
      "2026-12-07, quiet",
    );
    expect(rows).toHaveLength(3);
    expect(rows[2]).toContain("returning 30.0 µs (+3.0%), first-seen 70.0 µs (+7.0%) (**missed**)");
    expect(rows[2]).toContain("| 2026-12-07, quiet | `new-connection` |");
  });

  it("prints only the rows of the sections that ran", () => {
    expect(
      figuresOf("remote-store", {
        deletionMs: { samples: [1, 2, 3], median: 2, worst: 3 },
        rate: { ratio: { median: 0.99 } },
      }),
    ).toEqual(["median 2.00 ms, worst 3.00 ms of 3", "0.990"]);
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

  it("reports a failed section as failed in each of its rows, beside the figures of the other sections of a row", () => {
    expect(figures([{ name: "postgres-store", error: "no database" }])).toEqual([
      "failed: no database",
      "failed: no database",
    ]);
    expect(
      figures([
        { name: "grpc-js", error: "Error: exited (1)" },
        { name: "grpc-js-ns", result: result("x", { rows: [["certgate interceptor, admitted", 127.6, ""]] }) },
      ]),
    ).toEqual(["grpc-js failed: Error: exited (1); 128 ns in process"]);
  });

  it("keeps a cell's pipe from breaking the table", () => {
    const rows = reportTable([{ name: "x", result: result("x: a | b", {}, ["1 | 2 (target 3)"]) }], "today");
    expect(rows[2]).toContain("a \\| b");
    expect(rows[2]).toContain("1 \\| 2 (target 3)");
  });
});

describe("measuredOn()", () => {
  const header = (load: string) => [
    "certgate benchmark, 2026-12-08T00:37:36.870Z",
    `machine: 2 cores, x, Node v20, linux/x64, load average at start ${load} 1.16 1.20`,
    "settings: 5 rounds",
  ];
  const run = (warnings: string[]): ReportedSection[] => [{ name: "a", result: result("a", {}, [], warnings) }];

  it("says quiet below a load average of 1.5 with no section disturbed, else shared", () => {
    expect(measuredOn(header("0.74"), run([]))).toBe("2026-12-08, quiet");
    expect(measuredOn(header("1.50"), run([]))).toBe("2026-12-08, shared");
    expect(
      measuredOn(
        header("0.20"),
        run([
          "connect gate: in 2 of 5 runs other processes took more than 10% of the server's core: figures are noisy",
        ]),
      ),
    ).toBe("2026-12-08, shared");
  });

  it("marks a --quick run", () => {
    expect(measuredOn([...header("0.1"), "settings: 2 rounds (--quick: a smoke run, figures are rough)"], [])).toBe(
      "2026-12-08, quiet (--quick)",
    );
  });
});

describe("the rows' figures", () => {
  it("decision-ns", () => {
    const results = [
      { name: "decide(peer), admitted", netNs: 72.4 },
      { name: "peerCertificateContextValues(req)", netNs: 40 },
      { name: "gate(context), admitted", netNs: 55 },
    ];
    expect(figuresOf("decision-ns", { results })).toEqual(["72 ns (95 ns per admitted call through the gate)"]);
  });

  it("interceptor-overhead and certgate-share", () => {
    const connect = [ab("baseline", 1), ab("interceptor", 1.022, 0.95, 1.1), ab("gate", 1.008, 0.99, 1.03)];
    const share = [
      { protocol: "connect", variant: "interceptor", share: 0.0049 },
      { protocol: "connect", variant: "gate", share: 0.0047 },
      { protocol: "grpc", variant: "grpc-js", share: 0.01 },
    ];
    expect(
      figures([
        { name: "interceptor-overhead", result: result("x", { connect }) },
        { name: "certgate-share", result: result("x", share) },
      ]),
    ).toEqual([
      "gate +0.8%, interceptor +2.2% (A/B medians, ±10% spread); 0.47% / 0.49% of busy time in a CPU profile",
      "1.00% of busy time (profile)",
    ]);
  });

  it("refusal-cost", () => {
    expect(figuresOf("refusal-cost", { connect: [ab("fast", 0.3)], grpc: [ab("fast", 0.6)] })).toEqual([
      "0.30× Connect, 0.60× (**missed**) gRPC",
    ]);
  });

  it("grpc-js", () => {
    const refusal = [
      { variant: "admitted", serverUsPerCall: 100 },
      { variant: "refused-other", serverUsPerCall: 63 },
    ];
    expect(figuresOf("grpc-js", { overhead: [ab("grpc-js+certgate", 1.006)], refusal })).toEqual([
      "+0.6% (A/B median); refused calls 0.63× an admitted one",
    ]);
  });

  it("metrics-cost", () => {
    const data = {
      inProcess: { pairs: [{ name: "gate(context), admitted", offNs: 100, onNs: 217 }] },
      connect: [{ ...ab("gate", 1), serverUsPerCall: 117 }, ab("gate-metrics", 1.001)],
    };
    expect(figuresOf("metrics-cost", data)).toEqual(["+117 ns through the gate (about 0.10% of a call); A/B +0.1%"]);
  });

  it("policy", () => {
    const data = {
      inProcess: { thumbprint: { warmNs: 87 }, policy: { warmNs: 90 } },
      connect: [ab("thumbprint", 1), ab("policy", 0.99)],
    };
    expect(figuresOf("policy", data)).toEqual(["-1.0% calls/s; 90 against 87 ns in process"]);
  });

  it("directory-store, and a run saved before it handed back its repeated loads", () => {
    const sizes = [
      { count: 1, rssBytesPerCertificate: 393216, hitNs: 300, applyAddMs: 9, applyReplaceMs: 9, loadMs: 10 },
      { count: 1000, rssBytesPerCertificate: 393, hitNs: 475, applyAddMs: 1.6, applyReplaceMs: 1.7, loadMs: 50 },
      { count: 100000, rssBytesPerCertificate: 391, hitNs: 651, applyAddMs: 1.8, applyReplaceMs: 1.7, loadMs: 2500 },
    ];
    const repeated = {
      count: 100000,
      overBaseMs: [2200, 2900, 2500],
      rssBytesPerCertificate: [290, 391, 300],
      targetMs: 3000,
    };
    expect(figuresOf("directory-store", { sizes, repeated })).toEqual([
      "2.2–2.9 s (3 of 3), 290–391 B/cert, 1.6–1.8 ms, 475–651 ns at 1k to 100k",
    ]);
    expect(figuresOf("directory-store", sizes)).toEqual([
      "2.5 s (one run), 391 B/cert, 1.6–1.8 ms, 475–651 ns at 1k to 100k",
    ]);
  });

  it("store-server-memory", () => {
    const stage = (rss: number) => ({ started: { rss }, list: { rss }, watch: { rss }, verify: { rss } });
    expect(figuresOf("store-server-memory", { count: 1001, one: stage(1000), many: stage(255000) })).toEqual([
      "254 / 254 / 254 / 254 B after start / list / watch / verify",
    ]);
  });

  it("expiring-list", () => {
    expect(
      figuresOf("expiring-list", { coldMs: [297, 300, 290], warmMs: [173], plainMs: [10_800, 10_900, 10_700] }),
    ).toEqual(["297 ms cold, 173 ms warm, against 10.8 s unfiltered"]);
  });

  it("postgres-store", () => {
    const data = {
      revocationMs: { median: 2.29, worst: 3.73 },
      hundredThousand: { mirrorSnapshotMs: [2490, 2400, 3100] },
    };
    expect(figuresOf("postgres-store", data)).toEqual(["median 2.29 ms, worst 3.73 ms", "2.5 s"]);
  });

  it("authz-proxy", () => {
    expect(figuresOf("authz-proxy", { direct: { p50Ms: 0.094, p99Ms: 0.561 } })).toEqual(["p50 94 µs, p99 561 µs"]);
  });

  it("online-revocation, and a run saved before it handed back its refresh rate", () => {
    const data = { warmRatio: 0.96, firstRatio: 1.08, refresh: { count: 10000, waited: 0, perSecond: 3.33 } };
    const figure =
      "0.96; first seen with a cached status 1.08; 10,000 certificates refreshed at 3.3 responder requests/s, none waited";
    expect(figuresOf("online-revocation", data)).toEqual([figure]);
    const saved = { ...data, refresh: { count: 10000, waited: 0 } };
    expect(
      figuresOf("online-revocation", saved, ["refresh (50 min period): 10000 requests, 3.3/s on average"]),
    ).toEqual([figure]);
  });

  it("mirror-scale", () => {
    const data = {
      sizes: [
        { size: 1000, readyMs: 90, rssBytesPerCertificate: 2621, hitNs: 361 },
        { size: 1000000, readyMs: 4800, rssBytesPerCertificate: 95, hitNs: 536 },
      ],
      fan: {
        mirrors: 500,
        latencyMs: { p50: 81.5, p99: 179 },
        burst: { admittedAfter: 0 },
        cpuUsPerWatcherChange: { few: 5, fewWatchers: 50, many: 1.4 },
      },
    };
    expect(figuresOf("mirror-scale", data)).toEqual([
      "4.8 s; 95 B; 361 and 536 ns",
      "p50 81.5 ms, p99 179 ms (**missed**); none missed; 5.0 µs at 50 watchers, 1.4 µs at 500",
    ]);
  });

  it("postgres-million", () => {
    const data = {
      bulkLoad: { seconds: 98.3, perSecond: 10172.4 },
      memory: { perCertificate: 173.2 },
      pageMs: { "first page": 9.62, "page at the end": 9.01 },
    };
    expect(figuresOf("postgres-million", data)).toEqual(["10,172/s (98 s)", "173 B; 9.6 and 9.0 ms"]);
  });
});
