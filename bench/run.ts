// npm run bench [-- --quick] [-- --only NAME[,NAME]] [-- --report] [-- --report-from FILE] [-- --help]
//
// Runs the benchmark sections registered below and prints their figures.
// Each section is a module in bench/ exporting `run(options)`; register a new
// one with one line in `sections`.
import { spawnSync } from "node:child_process";
import { readFileSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { availableParallelism, loadavg } from "node:os";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { repoRoot, tasksetWorks } from "./ipc.js";
import type { WireProtocol } from "./load-generator.js";
import { createBenchPki } from "./pki.js";
import { measuredOn, type ReportedSection, reportTable } from "./report.js";
import { section, type BenchOptions, type Section, type SectionModule, type SectionResult } from "./section.js";

const sections: Section[] = [
  section("decision-ns", () => import("./decision-ns.js")),
  section("interceptor-overhead", () => import("./interceptor-overhead.js")),
  section("metrics-cost", () => import("./metrics-cost.js")),
  section("certgate-share", () => import("./certgate-share.js")),
  section("refusal-cost", () => import("./refusal-cost.js")),
  section("grpc-js", () => import("./grpc-js.js")),
  section("grpc-js-ns", () => import("./grpc-js-ns.js")),
  section("new-connection", () => import("./new-connection.js"), { byDefault: false }),
  section("directory-store", () => import("./directory-store.js")),
  section("store-server-memory", () => import("./store-server-memory.js")),
  section("policy", () => import("./policy.js")),
  section("online-revocation", () => import("./online-revocation.js")),
  section("remote-store", () => import("./remote-store.js")),
  section("mirror-scale", () => import("./mirror-scale.js")),
  section("expiring-list", () => import("./expiring-list.js")),
  section("postgres-store", () => import("./postgres-store.js")),
  section("authz-proxy", () => import("./authz-proxy.js")),
  section("postgres-million", () => import("./postgres-million.js"), { byDefault: false }),
];

const usage = `usage: npm run bench -- [options]

  --quick             a smoke run: 2 rounds, 1 s warm-up, 2 s window (or CERTGATE_BENCH_QUICK=1)
  --only NAME[,NAME]  run only these sections (also those not run by default)
  --all               run every section, also those not run by default
  --list              list the sections and exit
  --rounds N          interleaved rounds per comparison (default 5)
  --warmup S          warm-up per run, seconds (default 3)
  --duration S        measurement window per run, seconds (default 8)
  --protocols LIST    connect,grpc (default: each section's own)
  --variants LIST     e.g. baseline,interceptor,gate,both (default: each section's own)
  --sessions N        HTTP/2 connections of the load generator (default 4)
  --streams N         calls in flight (default 64)
  --no-pin            do not pin server and load generator to cores with taskset
  --retry-disturbed N measure a run again (up to N times) when other processes took
                      more than 10% of the server's core (default 0)
  --cpu-prof DIR      write a CPU profile of every server run's window into DIR
                      (summarize one with: npx tsx bench/profile-summary.ts FILE)
  --json FILE         also write the raw figures as JSON
  --report            also print the summary table of BENCHMARKS.md (its rows, this
                      run's figures), ready to paste
  --report-from FILE  print that table from a run saved with --json FILE, without
                      running anything`;

function fail(message: string): never {
  console.error(`bench: ${message}\n\n${usage}`);
  process.exit(2);
}

function positive(text: string | undefined, name: string, fallback: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0) fail(`${name} must be a positive number, got ${JSON.stringify(text)}`);
  return n;
}

function count(text: string | undefined, name: string, fallback: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) fail(`${name} must be a whole number, got ${JSON.stringify(text)}`);
  return n;
}

function list(text: string | undefined): string[] | undefined {
  return text === undefined
    ? undefined
    : text
        .split(",")
        .map((s) => s.trim())
        .filter((s) => s.length > 0);
}

// Which source the figures belong to: the commit, and whether the working
// tree had changes (read-only git).
function sourceVersion(): string {
  const git = (...args: string[]) => spawnSync("git", args, { cwd: repoRoot, encoding: "utf8" });
  const head = git("rev-parse", "--short", "HEAD");
  if (head.status !== 0) return "unknown (not a git checkout)";
  const dirty = git("status", "--porcelain", "--untracked-files=no", "--", "src").stdout.trim() !== "";
  return `commit ${head.stdout.trim()}${dirty ? " with uncommitted changes in src/" : ""}`;
}

function cpuModel(): string {
  try {
    const match = /^model name\s*:\s*(.+)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"));
    return match?.[1]?.trim() ?? "unknown CPU";
  } catch {
    return "unknown CPU";
  }
}

// Prints the summary table of a run saved with --json, so that a table can be
// rebuilt after the fact (or after a change to its rows).
function reportFrom(file: string): number {
  let saved: { header?: unknown; results?: unknown };
  try {
    saved = JSON.parse(readFileSync(file, "utf8")) as typeof saved;
  } catch (error) {
    console.error(`bench: cannot read ${file}: ${error instanceof Error ? error.message : String(error)}`);
    return 2;
  }
  if (!Array.isArray(saved.header) || !Array.isArray(saved.results)) {
    console.error(`bench: ${file} is not a run saved with --json (no header and results)`);
    return 2;
  }
  const results = saved.results as ReportedSection[];
  console.log(reportTable(results, measuredOn(saved.header as string[], results)).join("\n"));
  return 0;
}

async function main(): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      options: {
        quick: { type: "boolean" },
        only: { type: "string", multiple: true },
        all: { type: "boolean" },
        list: { type: "boolean" },
        rounds: { type: "string" },
        warmup: { type: "string" },
        duration: { type: "string" },
        protocols: { type: "string" },
        variants: { type: "string" },
        sessions: { type: "string" },
        streams: { type: "string" },
        "no-pin": { type: "boolean" },
        "retry-disturbed": { type: "string" },
        "cpu-prof": { type: "string" },
        json: { type: "string" },
        report: { type: "boolean" },
        "report-from": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }).values;
  } catch (error) {
    fail((error as Error).message);
  }
  if (parsed.help === true) {
    console.log(usage);
    return 0;
  }
  if (parsed["report-from"] !== undefined) return reportFrom(parsed["report-from"]);
  if (parsed.list === true) {
    for (const s of sections) console.log(`${s.name}${s.byDefault ? "" : " (not run by default)"}`);
    return 0;
  }
  const quick = parsed.quick === true || process.env.CERTGATE_BENCH_QUICK === "1";
  const only = parsed.only?.flatMap((o) => list(o) ?? []);
  for (const name of only ?? []) {
    if (!sections.some((s) => s.name === name)) {
      fail(`unknown section ${JSON.stringify(name)}; sections: ${sections.map((s) => s.name).join(", ")}`);
    }
  }
  const chosen = sections.filter((s) =>
    only !== undefined ? only.includes(s.name) : parsed.all === true || s.byDefault,
  );
  // Loaded up front so that --variants can be checked; a section that does
  // not load is reported as failed and the others still run.
  const modules = new Map<string, SectionModule | Error>();
  for (const s of chosen) {
    modules.set(
      s.name,
      await s.load().catch((error: unknown) => (error instanceof Error ? error : new Error(String(error)))),
    );
  }
  const variants = list(parsed.variants);
  const knownVariants = new Set([...modules.values()].flatMap((m) => (m instanceof Error ? [] : (m.variants ?? []))));
  for (const v of variants ?? []) {
    if (!knownVariants.has(v)) fail(`unknown variant ${JSON.stringify(v)}; variants: ${[...knownVariants].join(", ")}`);
  }
  const protocols = list(parsed.protocols);
  for (const p of protocols ?? []) {
    if (p !== "connect" && p !== "grpc") fail(`unknown protocol ${JSON.stringify(p)}; protocols: connect, grpc`);
  }
  const canPin = tasksetWorks() && availableParallelism() >= 2;
  const pin = parsed["no-pin"] !== true && canPin;
  const cpuProfDir = parsed["cpu-prof"] === undefined ? undefined : resolve(parsed["cpu-prof"]);
  if (cpuProfDir !== undefined) mkdirSync(cpuProfDir, { recursive: true });

  const pki = await createBenchPki();
  // Children exit on their own when this process goes away (IPC disconnect);
  // the temp folder with the keys is ours to remove.
  const cleanUp = () => rmSync(pki.dir, { recursive: true, force: true });
  process.once("SIGINT", () => {
    cleanUp();
    process.exit(130);
  });
  const options: BenchOptions = {
    rounds: Math.max(1, Math.round(positive(parsed.rounds, "--rounds", quick ? 2 : 5))),
    warmupMs: positive(parsed.warmup, "--warmup", quick ? 1 : 3) * 1000,
    durationMs: positive(parsed.duration, "--duration", quick ? 2 : 8) * 1000,
    quick,
    protocols: protocols as WireProtocol[] | undefined,
    variants,
    sessions: Math.max(1, Math.round(positive(parsed.sessions, "--sessions", 4))),
    streams: Math.max(1, Math.round(positive(parsed.streams, "--streams", 64))),
    pin,
    retryDisturbed: count(parsed["retry-disturbed"], "--retry-disturbed", 0),
    cpuProfDir,
    pki,
    log: (line) => console.log(`  · ${line}`),
  };

  const startedAt = new Date();
  const header = [
    `certgate benchmark, ${startedAt.toISOString()}`,
    `source: ${sourceVersion()}`,
    `machine: ${availableParallelism()} cores, ${cpuModel()}, Node ${process.version}, ${process.platform}/${process.arch}, load average at start ${loadavg()
      .map((l) => l.toFixed(2))
      .join(" ")}`,
    pin
      ? "pinning: echo server on core 0, load generator on core 1 (taskset)"
      : `pinning: off (${canPin ? "--no-pin" : "taskset not available or fewer than 2 cores"}); server and load generator share the cores, figures are noisier`,
    `settings: ${options.rounds} rounds, ${options.warmupMs / 1000} s warm-up, ${options.durationMs / 1000} s window, ${options.streams} calls in flight on ${options.sessions} connections${quick ? " (--quick: a smoke run, figures are rough)" : ""}`,
    `sections: ${chosen.map((s) => s.name).join(", ")}`,
  ];
  console.log(header.join("\n"));

  const results: { name: string; result?: SectionResult; error?: string; seconds: number }[] = [];
  try {
    for (const s of chosen) {
      console.log(`\n${s.name}: running`);
      const t0 = Date.now();
      try {
        const mod = modules.get(s.name);
        if (mod === undefined || mod instanceof Error) throw mod ?? new Error("not loaded");
        results.push({ name: s.name, result: await mod.run(options), seconds: (Date.now() - t0) / 1000 });
      } catch (error) {
        console.error(`${s.name} failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
        results.push({ name: s.name, error: String(error), seconds: (Date.now() - t0) / 1000 });
      }
    }
  } finally {
    cleanUp();
  }

  const totalSeconds = (Date.now() - startedAt.getTime()) / 1000;
  console.log(`\n${"=".repeat(78)}\n${header.join("\n")}`);
  for (const r of results) {
    console.log(`\n## ${r.result?.title ?? r.name} (${Math.round(r.seconds)} s)\n`);
    if (r.result === undefined) {
      console.log(`FAILED: ${r.error}`);
      continue;
    }
    for (const line of r.result.lines) console.log(line);
    for (const w of r.result.warnings) console.log(`WARNING: ${w}`);
  }
  console.log(`\ntotal: ${Math.round(totalSeconds)} s`);
  if (parsed.report === true) {
    console.log(`\nSummary for BENCHMARKS.md:\n\n${reportTable(results, measuredOn(header, results)).join("\n")}`);
  }
  if (parsed.json !== undefined) {
    writeFileSync(
      parsed.json,
      JSON.stringify({ header, settings: { ...options, pki: undefined, log: undefined }, results }, null, 2),
    );
  }
  return results.some((r) => r.result === undefined) ? 1 : 0;
}

process.exitCode = await main();
