// grpc-js: certgate/grpc-js on an @grpc/grpc-js server, measured as the
// Connect sections measure connect-node: raw HTTP/2 load of unary gRPC Echo
// calls on persistent connections, interleaved rounds, fresh processes.
// Two comparisons: server CPU per admitted call, bare grpc-js vs certgate
// (and vs reading getAuthContext() per call, what grpc-js users do without
// certgate); and what a refused call costs against an admitted one.
import type { GrpcJsMode } from "./grpc-js-server.js";
import { runRounds, summarize, type RunSpec, type VariantSummary } from "./load-run.js";
import type { BenchOptions, SectionResult } from "./section.js";
import { fixed, percent } from "./stats.js";

interface GrpcJsVariant {
  readonly mode: GrpcJsMode;
  readonly client: "alice" | "bob" | "none";
}

const overheadVariants: Record<string, GrpcJsVariant> = {
  "grpc-js": { mode: "none", client: "alice" },
  "grpc-js+certgate": { mode: "interceptor", client: "alice" },
  "grpc-js+getAuthContext": { mode: "auth-context", client: "alice" },
};
const refusalVariants: Record<string, GrpcJsVariant> = {
  admitted: { mode: "interceptor", client: "alice" },
  "refused-other": { mode: "interceptor", client: "bob" },
  "refused-none": { mode: "interceptor", client: "none" },
};

/** variants lists the names `--variants` may pick here. */
export const variants: readonly string[] = [...Object.keys(overheadVariants), ...Object.keys(refusalVariants)];

/** The target: certgate adds at most 2% server CPU per call. */
const target = 1.02;

function specOf(name: string, v: GrpcJsVariant): RunSpec {
  return {
    name,
    certgate: "none",
    server: "grpc-js",
    grpcJs: v.mode,
    protocol: "grpc",
    client: v.client,
    expect: v.client === "alice" ? "ok" : "refused",
  };
}

function pick(all: Record<string, GrpcJsVariant>, options: BenchOptions, reference: string): RunSpec[] {
  const names = Object.keys(all).filter((n) => options.variants === undefined || options.variants.includes(n));
  if (names.length > 0 && !names.includes(reference)) names.unshift(reference);
  return names.map((n) => specOf(n, all[n] as GrpcJsVariant));
}

/** run measures both comparisons. */
export async function run(options: BenchOptions): Promise<SectionResult> {
  const lines: string[] = [];
  const warnings: string[] = [];
  const data: Record<string, VariantSummary[]> = {};
  const where = `${options.streams} calls in flight on ${options.sessions} persistent HTTP/2 connections, ${options.rounds} rounds (medians)`;

  const overhead = pick(overheadVariants, options, "grpc-js");
  if (overhead.length > 1) {
    const summary = summarize(overhead, await runRounds("grpc-js overhead", overhead, options), "grpc-js");
    data.overhead = summary.summaries;
    lines.push(`@grpc/grpc-js server, gRPC unary Echo, admitted calls, ${where}:`, ...summary.lines);
    for (const s of summary.summaries) {
      if (s.cpuRatio === undefined) continue;
      const verdict =
        s.variant === "grpc-js+certgate" ? ` (${s.cpuRatio.median <= target ? "within" : "over"} the 2% target)` : "";
      lines.push(`  ${s.variant}: adds ${percent(s.cpuRatio.median)} server CPU per call${verdict}`);
    }
    lines.push("");
    warnings.push(...summary.warnings);
  }

  const refusal = pick(refusalVariants, options, "admitted");
  if (refusal.length > 1) {
    const summary = summarize(refusal, await runRounds("grpc-js refusal", refusal, options), "admitted");
    data.refusal = summary.summaries;
    lines.push(`@grpc/grpc-js server behind certgate, admitted vs refused (16) calls, ${where}:`, ...summary.lines);
    const admitted = summary.summaries.find((s) => s.variant === "admitted");
    for (const s of summary.summaries) {
      if (s.variant === "admitted" || admitted === undefined) continue;
      lines.push(
        `  ${s.variant}: ${fixed(s.serverUsPerCall)} µs per refused call vs ${fixed(admitted.serverUsPerCall)} µs admitted (${s.serverUsPerCall < admitted.serverUsPerCall ? "cheaper" : "NOT cheaper"})`,
      );
    }
    lines.push("");
    warnings.push(...summary.warnings);
  }
  return {
    title: "grpc-js: certgate/grpc-js on an @grpc/grpc-js server, server CPU per call",
    lines,
    warnings,
    data,
  };
}
