// `npm run bench -- --report`: the summary table at the top of BENCHMARKS.md,
// built from a run's section results, one row per row there, ready to paste.
import { reportRows } from "./report-rows.js";
import type { SectionResult } from "./section.js";

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

// Load generator warnings saying other processes took the server's core.
const disturbed = /other processes took|others took/;

/**
 * measuredOn is the "measured" cell of a run: its date and the machine,
 * "quiet" when the load average at start was below 1.5 and no section was
 * disturbed by other processes, else "shared". It reads the header the run
 * printed (and `--json` saved).
 */
export function measuredOn(header: readonly string[], sections: readonly ReportedSection[]): string {
  const text = header.join("\n");
  const date = /(\d{4}-\d{2}-\d{2})T/.exec(text)?.[1] ?? "unknown date";
  const load = Number(/load average at start ([\d.]+)/.exec(text)?.[1] ?? Number.NaN);
  const quiet = load < 1.5 && !sections.some((s) => s.result?.warnings.some((w) => disturbed.test(w)));
  return `${date}, ${quiet ? "quiet" : "shared"}${/--quick/.test(text) ? " (--quick)" : ""}`;
}

// A section no row of the table names: one row from the lines of its output
// that judge a target ("within the 2% target", "target < 1000 ms").
function textRow(result: SectionResult): ReportRow {
  const judged = result.lines.map((l) => l.trim()).filter((l) => /\btargets?\b/.test(l));
  return {
    measured: result.title.replace(/^[\w-]+: /, ""),
    target: "as judged in the figure",
    figure: judged.length > 0 ? judged.join("; ") : "see the section's output",
  };
}

const cell = (text: string) => text.replace(/\|/g, "\\|").replace(/\s+/g, " ");

/**
 * reportTable formats the summary table of a run: the rows of BENCHMARKS.md
 * whose sections ran, in its order, then a row for any section the table does
 * not name. A failed section says so in each of its rows.
 */
export function reportTable(sections: readonly ReportedSection[], measured: string): string[] {
  const ran = new Map(sections.map((s) => [s.name, s]));
  const lines = [
    "| what is measured | target | current figure | measured | section |",
    "| --- | --- | --- | --- | --- |",
  ];
  const push = (r: ReportRow, names: readonly string[]) =>
    lines.push(
      `| ${cell(r.measured)} | ${cell(r.target)} | ${cell(r.figure)} | ${cell(measured)} | ${names.map((n) => `\`${n}\``).join(", ")} |`,
    );
  const named = new Set<string>();
  const specs = reportRows((name) => ran.get(name)?.result?.lines ?? []);
  for (const spec of specs) {
    const present = spec.sections.filter((n) => ran.has(n));
    if (present.length === 0) continue;
    for (const n of spec.sections) named.add(n);
    const failed = present.flatMap((n) => {
      const s = ran.get(n);
      return s?.result === undefined
        ? [`${present.length > 1 ? `${n} ` : ""}failed: ${s?.error ?? "unknown error"}`]
        : [];
    });
    const parts = spec.figure((n) => ran.get(n)?.result?.data);
    push({ measured: spec.measured, target: spec.target, figure: [...failed, ...parts].join("; ") }, spec.sections);
  }
  for (const s of sections) {
    if (named.has(s.name)) continue;
    push(
      s.result === undefined
        ? { measured: s.name, target: "", figure: `failed: ${s.error ?? "unknown error"}` }
        : textRow(s.result),
      [s.name],
    );
  }
  return lines;
}
