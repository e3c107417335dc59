// new-connection: what certgate adds when every call opens a new TLS
// connection, so that the per-connection work (reading the peer certificate,
// hashing its thumbprints, the store look-up) is paid on every call. Not in
// the default run: a TLS handshake costs the load generator about as much as
// the server, so resolution is coarse (±15–20%).
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
};
/** variants lists the names `--variants` may pick here. */
export const variants: readonly string[] = Object.keys(allVariants);
const defaultVariants = ["baseline", "interceptor"];
const defaultProtocols: WireProtocol[] = ["connect"];
/** Connections being opened at once; each carries one call. */
const parallelConnections = 16;

/**
 * run compares the baseline with certgate when each call has its own
 * connection (full TLS handshake with a client certificate, no resumption).
 */
export async function run(options: BenchOptions): Promise<SectionResult> {
  const names = (options.variants ?? defaultVariants).filter((v) => v in allVariants);
  if (!names.includes("baseline")) names.unshift("baseline");
  const perCall: BenchOptions = { ...options, streams: parallelConnections };
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
      connectionPerCall: true,
    }));
    const rounds = await runRounds(`new-connection ${protocol}`, specs, perCall);
    const summary = summarize(specs, rounds, "baseline");
    data[protocol] = summary.summaries;
    lines.push(
      `${protocol === "connect" ? "Connect" : "gRPC"} protocol, one call per new TLS connection, ${parallelConnections} connections at a time, ${options.rounds} rounds (medians):`,
      ...summary.lines,
    );
    for (const s of summary.summaries) {
      if (s.cpuRatio !== undefined) {
        lines.push(`  ${s.variant}: certgate adds ${percent(s.cpuRatio.median)} server CPU per call and connection`);
      }
    }
    lines.push("");
    warnings.push(...summary.warnings);
  }
  return {
    title: "new-connection: server CPU per call when every call opens a new connection",
    lines,
    warnings,
    data,
  };
}
