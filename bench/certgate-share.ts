// certgate-share: certgate's share of the server's CPU, read from a CPU
// profile of the measurement window: the self time of certgate's own frames
// (src/) over all busy time. An A/B comparison on 2 cores resolves ±3–5% at
// best; the profile sees a 0.5% share directly, and other processes on the
// machine hardly move it.
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { CertgateMode } from "./echo-server.js";
import type { WireProtocol } from "./load-generator.js";
import { measureRun, type RunSpec } from "./load-run.js";
import { isCertgateSource, summarizeProfile, type CpuProfile } from "./profile.js";
import type { BenchOptions, SectionResult } from "./section.js";
import { fixed, table } from "./stats.js";

interface ShareVariant {
  readonly certgate: CertgateMode;
  /** The grpc-js server behind certgate/grpc-js, which speaks gRPC only. */
  readonly grpcJs?: boolean;
}

const allVariants: Record<string, ShareVariant> = {
  interceptor: { certgate: "interceptor" },
  gate: { certgate: "gate" },
  both: { certgate: "both" },
  "grpc-js": { certgate: "none", grpcJs: true },
};
/** variants lists the names `--variants` may pick here. */
export const variants: readonly string[] = Object.keys(allVariants);
const defaultVariants = ["interceptor", "gate", "grpc-js"];
const defaultProtocols: WireProtocol[] = ["connect"];

interface Share {
  readonly protocol: WireProtocol;
  readonly variant: string;
  readonly serverUsPerCall: number;
  /** certgate's self time over busy time, 0..1. */
  readonly share: number;
  readonly samples: number;
  readonly topFrames: [string, number][];
}

/**
 * run profiles one run per variant and reports certgate's share of the
 * server's busy CPU time, also as µs per call.
 */
export async function run(options: BenchOptions): Promise<SectionResult> {
  const names = (options.variants ?? defaultVariants).filter((v) => v in allVariants);
  const chosen = names.length > 0 ? names : defaultVariants;
  const dir = options.cpuProfDir ?? (await mkdtemp(join(tmpdir(), "certgate-bench-prof-")));
  const shares: Share[] = [];
  try {
    // connect-node's variants run on the protocols asked for (by default,
    // Connect); grpc-js speaks gRPC only.
    const runs: [WireProtocol, string][] = [];
    for (const name of chosen) {
      if (allVariants[name]?.grpcJs === true) {
        if (options.protocols === undefined || options.protocols.includes("grpc")) runs.push(["grpc", name]);
      } else {
        for (const protocol of options.protocols ?? defaultProtocols) runs.push([protocol, name]);
      }
    }
    for (const [protocol, name] of runs) {
      const v = allVariants[name] as ShareVariant;
      const spec: RunSpec = {
        name,
        certgate: v.certgate,
        protocol,
        client: "alice",
        expect: "ok",
        ...(v.grpcJs === true ? { server: "grpc-js" as const, grpcJs: "interceptor" as const } : {}),
      };
      const m = await measureRun(spec, 0, { ...options, cpuProfDir: dir });
      const profile = JSON.parse(await readFile(join(dir, `${protocol}-${name}-r1.cpuprofile`), "utf8")) as CpuProfile;
      const summary = summarizeProfile(profile, isCertgateSource);
      const share = summary.matchedSelfUs / summary.busyUs;
      options.log(`certgate-share ${protocol} ${name}: ${fixed(share * 100, 2)}% of busy time in certgate's frames`);
      shares.push({
        protocol,
        variant: name,
        serverUsPerCall: m.serverUsPerCall,
        share,
        samples: profile.samples.length,
        topFrames: summary.self
          // certgate's frames read "name src/file"; a dependency's "name @scope/pkg/...".
          .filter(([label]) => label.includes(" src/"))
          .slice(0, 3)
          .map(([label, us]) => [label, us / summary.busyUs]),
      });
    }
  } finally {
    if (options.cpuProfDir === undefined) await rm(dir, { recursive: true, force: true });
  }
  const lines = [
    `One profiled run per variant (${options.durationMs / 1000} s window, sampled every 250 µs), admitted calls, persistent HTTP/2 connections:`,
    ...table(
      [
        "protocol",
        "variant",
        "server µs/call",
        "certgate self time",
        "certgate µs/call",
        "largest certgate frames (self, % of busy)",
      ],
      shares.map((s) => [
        s.protocol,
        s.variant,
        fixed(s.serverUsPerCall),
        `${fixed(s.share * 100, 2)}%`,
        fixed(s.share * s.serverUsPerCall, 2),
        s.topFrames.map(([label, share]) => `${label.replace(/:\d+$/, "")} ${fixed(share * 100, 2)}%`).join(", "),
      ]),
      [5],
    ),
    "  (self time only: the garbage certgate makes and the engine's own work on its behalf are not counted;",
    "   frame names are those of tsx's compiled output, so lines are not meaningful)",
    "",
  ];
  return {
    title: "certgate-share: certgate's share of the server's CPU, from a CPU profile",
    lines,
    warnings: [],
    data: shares,
  };
}
