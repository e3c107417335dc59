// interceptor-overhead: what certgate adds to the server's CPU per admitted
// call on persistent HTTP/2 connections, per protocol, as interceptor and as
// request gate, against the same echo server without certgate.
import type { CertgateMode } from "./echo-server.js";
import type { WireProtocol } from "./load-generator.js";
import { runRounds, summarize, type RunSpec, type VariantSummary } from "./load-run.js";
import type { BenchOptions, SectionResult } from "./section.js";
import { percent } from "./stats.js";

const allVariants: Record<string, CertgateMode> = {
  baseline: "none",
  interceptor: "interceptor",
  gate: "gate",
  both: "both",
  fast: "fast",
};

/** variants lists the names `--variants` may pick here. */
export const variants: readonly string[] = Object.keys(allVariants);
// `both` (interceptor and gate, two decisions per call) and `fast` (the gate
// behind createFastRefusalHandler, one decision per call shared by both) are
// available with --variants but not measured by default, to keep the run
// within minutes.
const defaultVariants = ["baseline", "interceptor", "gate"];
const defaultProtocols: WireProtocol[] = ["connect", "grpc"];

/** The target: certgate adds at most 2% server CPU per call. */
const target = 1.02;

/**
 * run measures the baseline echo server against the certgate variants, one
 * interleaved comparison per protocol, with alice's admitted certificate.
 */
export async function run(options: BenchOptions): Promise<SectionResult> {
  const names = (options.variants ?? defaultVariants).filter((v) => v in allVariants);
  if (!names.includes("baseline")) names.unshift("baseline");
  const lines: string[] = [];
  const warnings: string[] = [];
  const data: Record<string, VariantSummary[]> = {};
  for (const protocol of options.protocols ?? defaultProtocols) {
    const specs: RunSpec[] = names.map((name) => ({
      name,
      certgate: allVariants[name] as CertgateMode,
      protocol,
      client: "alice",
      expect: "ok",
    }));
    const rounds = await runRounds(`interceptor-overhead ${protocol}`, specs, options);
    const summary = summarize(specs, rounds, "baseline");
    data[protocol] = summary.summaries;
    lines.push(
      `${protocol === "connect" ? "Connect" : "gRPC"} protocol, unary Echo, ${options.streams} calls in flight on ${options.sessions} persistent HTTP/2 connections, ${options.rounds} rounds (medians):`,
      ...summary.lines,
    );
    for (const s of summary.summaries) {
      if (s.cpuRatio === undefined) continue;
      const verdict = s.cpuRatio.median <= target ? "within" : "over";
      lines.push(
        `  ${s.variant}: certgate adds ${percent(s.cpuRatio.median)} server CPU per call (${verdict} the 2% target${protocol === "connect" ? "" : "; the target is set on the Connect protocol"})`,
      );
    }
    lines.push("");
    warnings.push(...summary.warnings);
  }
  return {
    title: "interceptor-overhead: server CPU per admitted call with and without certgate",
    lines,
    warnings,
    data,
  };
}
