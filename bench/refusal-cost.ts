// refusal-cost: what a refused call costs the server, against an admitted
// one (target: at most half), turned away by the fast refusal path
// (createFastRefusalHandler, before Connect), the request gate (before the
// body is read) or the interceptor (after it was read and parsed), under a
// flood from a client whose certificate is not allowed.
import type { CertgateMode } from "./echo-server.js";
import type { WireProtocol } from "./load-generator.js";
import { runRounds, summarize, type RunSpec, type VariantSummary } from "./load-run.js";
import type { BenchOptions, SectionResult } from "./section.js";
import { fixed } from "./stats.js";

interface RefusalVariant {
  readonly certgate: CertgateMode;
  readonly client: "alice" | "bob" | "none";
  readonly expect?: "ok" | "refused";
}

const allVariants: Record<string, RefusalVariant> = {
  // The reference: alice's calls admitted through the gate and the fast path.
  admitted: { certgate: "fast", client: "alice", expect: "ok" },
  fast: { certgate: "fast", client: "bob" },
  "fast-no-certificate": { certgate: "fast", client: "none" },
  // bob presents a certificate from the same CA that the store does not admit.
  interceptor: { certgate: "interceptor", client: "bob" },
  gate: { certgate: "gate", client: "bob" },
  // A client without any certificate: refused without a store look-up.
  "interceptor-no-certificate": { certgate: "interceptor", client: "none" },
  "gate-no-certificate": { certgate: "gate", client: "none" },
};

/** variants lists the names `--variants` may pick here. */
export const variants: readonly string[] = Object.keys(allVariants);
const defaultVariants = ["admitted", "fast", "gate", "interceptor"];
const defaultProtocols: WireProtocol[] = ["connect", "grpc"];
/** The target: a refused call costs at most this share of an admitted one. */
const target = 0.5;

/**
 * run measures server CPU per refused call through the interceptor and
 * through the gate, interleaved, with the interceptor as the reference.
 */
export async function run(options: BenchOptions): Promise<SectionResult> {
  const names = (options.variants ?? defaultVariants).filter((v) => v in allVariants);
  const chosen = names.length > 0 ? names : defaultVariants;
  const lines: string[] = [];
  const warnings: string[] = [];
  const data: Record<string, VariantSummary[]> = {};
  for (const protocol of options.protocols ?? defaultProtocols) {
    const specs: RunSpec[] = chosen.map((name) => {
      const v = allVariants[name] as RefusalVariant;
      return { name, certgate: v.certgate, protocol, client: v.client, expect: v.expect ?? "refused" };
    });
    const rounds = await runRounds(`refusal-cost ${protocol}`, specs, options);
    const reference = chosen.includes("admitted")
      ? "admitted"
      : chosen.includes("interceptor")
        ? "interceptor"
        : undefined;
    const summary = summarize(specs, rounds, reference);
    data[protocol] = summary.summaries;
    lines.push(
      `${protocol === "connect" ? "Connect" : "gRPC"} protocol, unary Echo, every call refused (Unauthenticated) except in "admitted", ${options.streams} calls in flight on ${options.sessions} persistent HTTP/2 connections, ${options.rounds} rounds (medians; server µs per call):`,
      ...summary.lines,
    );
    for (const s of summary.summaries) {
      if (s.variant === "admitted") {
        lines.push(`  admitted: an admitted call costs the server ${fixed(s.serverUsPerCall)} µs`);
      } else if (reference === "admitted" && s.cpuRatio !== undefined) {
        const ratio = s.cpuRatio.median;
        lines.push(
          `  ${s.variant}: a refused call costs the server ${fixed(s.serverUsPerCall)} µs, ${fixed(ratio, 2)}x an admitted one (${ratio <= target ? "within" : "over"} the ${target}x target)`,
        );
      } else {
        lines.push(`  ${s.variant}: a refused call costs the server ${fixed(s.serverUsPerCall)} µs`);
      }
    }
    lines.push("");
    warnings.push(...summary.warnings);
  }
  return {
    title: "refusal-cost: server CPU per refused call against an admitted one (fast path, gate, interceptor)",
    lines,
    warnings,
    data,
  };
}
