// `npm run bench -- --report`: the summary table at the top of BENCHMARKS.md,
// built from a run's section results, one row per target, ready to paste.
import type { VariantSummary } from "./load-run.js";
import type { SectionResult } from "./section.js";
import { fixed, percent } from "./stats.js";

/**
 * ReportRow is one row of the summary table: what is measured, its target
 * and the figure this run measured.
 */
export interface ReportRow {
  readonly measured: string;
  readonly target: string;
  readonly figure: string;
}

/** ReportedSection is what `--report` needs of one section's run. */
export interface ReportedSection {
  readonly name: string;
  readonly result?: SectionResult;
  readonly error?: string;
}

type Mapper = (data: unknown, result: SectionResult) => ReportRow[];

const summaries = (value: unknown): VariantSummary[] => (Array.isArray(value) ? (value as VariantSummary[]) : []);
const variant = (value: unknown, name: string): VariantSummary | undefined =>
  summaries(value).find((s) => s.variant === name);
const record = (value: unknown): Record<string, unknown> =>
  typeof value === "object" && value !== null ? (value as Record<string, unknown>) : {};
const num = (value: unknown): number => (typeof value === "number" ? value : Number.NaN);
const cpuAdded = (s: VariantSummary | undefined): string =>
  s?.cpuRatio === undefined ? "n/a" : percent(s.cpuRatio.median);

// Each section's data (what it hands back for --json) mapped to its rows.
// A section without a mapper gets one row from the lines of its output that
// judge a target (see textRows).
const mappers: Record<string, Mapper> = {
  "decision-ns": (data) => {
    const results = (record(data).results ?? []) as { name: string; netNs: number }[];
    const net = (name: string) => num(results.find((r) => r.name.startsWith(name))?.netNs);
    return [
      {
        measured: "One decision on a warm connection, in process",
        target: "< 1 µs",
        figure: `${fixed(net("decide(peer), admitted"), 1)} ns (${fixed(net("peerCertificateContextValues") + net("gate(context), admitted"), 1)} ns per admitted call through the gate)`,
      },
    ];
  },
  "interceptor-overhead": (data) => {
    const connect = record(data).connect;
    return [
      {
        measured: "Server CPU certgate adds per admitted call, persistent HTTP/2, Connect",
        target: "≤ 2%",
        figure: `gate ${cpuAdded(variant(connect, "gate"))}, interceptor ${cpuAdded(variant(connect, "interceptor"))} (A/B medians)`,
      },
    ];
  },
  "refusal-cost": (data) => {
    const ratio = (protocol: string) => {
      const fast = variant(record(data)[protocol], "fast");
      return fast?.cpuRatio === undefined ? "n/a" : `${fixed(fast.cpuRatio.median, 2)}×`;
    };
    return [
      {
        measured: "A refused call against an admitted one, persistent HTTP/2 (fast refusal path)",
        target: "≤ 0.5×",
        figure: `${ratio("connect")} Connect, ${ratio("grpc")} gRPC`,
      },
    ];
  },
  "new-connection": (data) => {
    const d = record(data);
    const base = variant(d.connect, "baseline")?.serverUsPerCall;
    const work = record(d.inProcess);
    const share = (us: number) => (base === undefined ? "" : ` (${percent(1 + us / base)})`);
    const returning = num(work.returningUs);
    const firstSeen = num(work.firstSeenUs);
    return [
      {
        measured: "certgate's work per new mTLS connection, against a bare handshake and call",
        target: "returning client ≤ 3%, first-seen certificate ≤ 6%",
        figure: `returning ${fixed(returning, 1)} µs${share(returning)}, first-seen ${fixed(firstSeen, 1)} µs${share(firstSeen)}`,
      },
    ];
  },
  "grpc-js": (data) => {
    const d = record(data);
    const admitted = variant(d.refusal, "admitted");
    const refused = variant(d.refusal, "refused-other");
    const refusedRatio =
      admitted === undefined || refused === undefined
        ? "n/a"
        : `${fixed(refused.serverUsPerCall / admitted.serverUsPerCall, 2)}×`;
    return [
      {
        measured: "certgate/grpc-js per admitted call on a grpc-js server",
        target: "≤ 2%",
        figure: `${cpuAdded(variant(d.overhead, "grpc-js+certgate"))} (A/B median); refused calls ${refusedRatio} an admitted one`,
      },
    ];
  },
  "directory-store": (data) => {
    const figures = (Array.isArray(data) ? data : []) as {
      count: number;
      loadMs: number;
      rssBytesPerCertificate: number;
      hitNs: number;
      applyAddMs: number;
      applyReplaceMs: number;
    }[];
    const largest = figures.at(-1);
    if (largest === undefined) return [];
    return [
      {
        measured: `Folder store at ${largest.count.toLocaleString("en")} certificates`,
        target: "admit-ready ≤ 3 s, ≤ 500 B/cert, a change ≤ 50 ms, flat look-up",
        figure: `${fixed(largest.loadMs / 1000, 1)} s, ${fixed(largest.rssBytesPerCertificate, 0)} B/cert, ${fixed(Math.max(largest.applyAddMs, largest.applyReplaceMs), 1)} ms, ${figures.map((f) => fixed(f.hitNs, 0)).join(" / ")} ns`,
      },
    ];
  },
  "store-server-memory": (data) => {
    const d = record(data);
    const count = num(d.count);
    const one = record(d.one);
    const many = record(d.many);
    const per = (stage: string) => (num(record(many[stage]).rss) - num(record(one[stage]).rss)) / (count - 1);
    return [
      {
        measured: `Store server memory per certificate at ${count.toLocaleString("en")}`,
        target: "≤ 500 B RSS",
        figure: `${["started", "list", "watch", "verify"].map((s) => fixed(per(s), 0)).join(" / ")} B after start / list / watch / verify`,
      },
    ];
  },
  "authz-proxy": (data) => {
    const direct = record(record(data).direct);
    return [
      {
        measured: "`certgate authz` forward-auth round trip on loopback",
        target: "p50 ≤ 100 µs",
        figure: `p50 ${fixed(num(direct.p50Ms) * 1000, 0)} µs, p99 ${fixed(num(direct.p99Ms) * 1000, 0)} µs`,
      },
    ];
  },
};

// The lines of a section's output that judge a target ("within the 2%
// target", "target < 1000 ms"), trimmed: the figure when no mapper exists.
function textRows(result: SectionResult): ReportRow[] {
  const judged = result.lines.map((l) => l.trim()).filter((l) => /\btargets?\b/.test(l));
  return [
    {
      measured: result.title.replace(/^[\w-]+: /, ""),
      target: "as judged in the figure",
      figure: judged.length > 0 ? judged.join("; ") : "see the section's output",
    },
  ];
}

const cell = (text: string) => text.replace(/\|/g, "\\|").replace(/\s+/g, " ");

/**
 * reportTable formats the summary table of a run: one row per target, with
 * the date and machine of the run and the section that measured it.
 */
export function reportTable(sections: readonly ReportedSection[], measuredOn: string): string[] {
  const lines = [
    "| what is measured | target | current figure | measured | section |",
    "| --- | --- | --- | --- | --- |",
  ];
  for (const s of sections) {
    const rows: ReportRow[] =
      s.result === undefined
        ? [{ measured: s.name, target: "", figure: `failed: ${s.error ?? "unknown error"}` }]
        : (() => {
            const mapped = mappers[s.name]?.(s.result.data, s.result) ?? [];
            return mapped.length > 0 ? mapped : textRows(s.result);
          })();
    for (const r of rows) {
      lines.push(
        `| ${cell(r.measured)} | ${cell(r.target)} | ${cell(r.figure)} | ${cell(measuredOn)} | \`${s.name}\` |`,
      );
    }
  }
  return lines;
}
