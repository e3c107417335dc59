// metrics-cost: what OpenTelemetry metrics add to certgate's per-call work.
// In process: one warm decision (core.enforce) and one gate call, admitted
// and refused, with no meter provider (the default when none is registered)
// against an SDK MeterProvider with a reader, interleaved. Then an A/B of
// server CPU per admitted call through the request gate, with and without
// metrics, on persistent HTTP/2 connections.
import type * as http2 from "node:http2";
import { createHandlerContext, type HandlerContext } from "@connectrpc/connect";
import { EchoService } from "../src/gen/certgate/example/v1/echo_pb.js";
import { createDecisionCore, type ClientCertOptions } from "../src/decision/decision.js";
import { createClientCertGate } from "../src/connect/client-cert-gate.js";
import { peerCertificateContextValues } from "../src/connect/context-values.js";
import { peerCertificateOf, type PeerCertificate } from "../src/core/peer-certificate.js";
import { createThumbprintStore } from "../src/stores/thumbprint-store.js";
import { holdPeers } from "./decision-ns.js";
import type { WireProtocol } from "./load-generator.js";
import { runRounds, summarize, type RunSpec, type VariantSummary } from "./load-run.js";
import { createBenchMeterProvider } from "./metrics-provider.js";
import type { BenchOptions, SectionResult } from "./section.js";
import { fixed, median, percent, table } from "./stats.js";

/** The budget: certgate (metrics included) adds at most 2% server CPU per call. */
const target = 1.02;

interface Pair {
  readonly name: string;
  /** Median ns per call without metrics, with metrics. */
  readonly offNs: number;
  readonly onNs: number;
}

export async function run(options: BenchOptions): Promise<SectionResult> {
  const lines: string[] = [];
  const warnings: string[] = [];
  const inProcess = await measureInProcess(options);
  lines.push(
    `in process, warm connection, ${inProcess.batches} interleaved batches of about ${inProcess.batchMs} ms per variant, median ns per call:`,
    ...table(
      ["operation", "no provider", "SDK provider", "added"],
      inProcess.pairs.map((p) => [p.name, fixed(p.offNs), fixed(p.onNs), `${fixed(p.onNs - p.offNs)} ns`]),
      [1, 2, 3],
    ),
    "",
  );

  const data: Record<string, unknown> = { inProcess };
  const protocols: WireProtocol[] = options.protocols ?? ["connect"];
  for (const protocol of protocols) {
    const specs: RunSpec[] = [
      { name: "gate", certgate: "gate", protocol, client: "alice", expect: "ok" },
      { name: "gate-metrics", certgate: "gate-metrics", protocol, client: "alice", expect: "ok" },
    ];
    const rounds = await runRounds(`metrics-cost ${protocol}`, specs, options);
    const summary = summarize(specs, rounds, "gate");
    data[protocol] = summary.summaries as VariantSummary[];
    lines.push(
      `${protocol === "connect" ? "Connect" : "gRPC"} protocol, unary Echo through the request gate, without and with metrics (SDK MeterProvider, export every second), ${options.streams} calls in flight on ${options.sessions} persistent HTTP/2 connections, ${options.rounds} rounds (medians):`,
      ...summary.lines,
    );
    for (const s of summary.summaries) {
      if (s.cpuRatio === undefined) continue;
      lines.push(
        `  metrics add ${percent(s.cpuRatio.median)} server CPU per call through the gate (${s.cpuRatio.median <= target ? "within" : "over"} the 2% budget)`,
      );
    }
    lines.push("");
    warnings.push(...summary.warnings);
  }
  return { title: "metrics-cost: what OpenTelemetry metrics add per call", lines, warnings, data };
}

async function measureInProcess(options: BenchOptions): Promise<{ pairs: Pair[]; batches: number; batchMs: number }> {
  const batches = options.quick ? 5 : 11;
  const batchMs = options.quick ? 40 : 100;
  const peers = await holdPeers(options.pki.issued);
  const provider = createBenchMeterProvider();
  try {
    const { alice, bob, port } = peers;
    const alicePeer: PeerCertificate = peerCertificateOf(alice.req);
    const bobPeer: PeerCertificate = peerCertificateOf(bob.req);
    const store = createThumbprintStore(options.pki.alice.sha1);
    const procedure = "/certgate.example.v1.EchoService/Echo";
    const contextFor = (req: http2.Http2ServerRequest): HandlerContext =>
      createHandlerContext({
        service: EchoService,
        method: EchoService.method.echo,
        protocolName: "connect",
        requestMethod: "POST",
        url: `https://127.0.0.1:${port}${procedure}`,
        contextValues: peerCertificateContextValues(req),
      });
    const aliceContext = contextFor(alice.req);
    const bobContext = contextFor(bob.req);

    // Each operation, built without and with metrics; warmed so that the
    // connection's decision is cached.
    type Loop = (n: number) => number;
    const variants = async (options: ClientCertOptions): Promise<Record<string, Loop>> => {
      const core = createDecisionCore({ store, ...options });
      const gate = createClientCertGate({ store, ...options });
      await core.enforce(alicePeer, procedure, "gate");
      await core.enforce(bobPeer, procedure, "gate");
      await gate(aliceContext);
      await Promise.resolve(gate(bobContext)).catch(() => undefined);
      return {
        "core.enforce(peer), admitted": (n) => {
          let ok = 0;
          for (let i = 0; i < n; i++)
            if ((core.enforce(alicePeer, procedure, "gate") as { kind: string }).kind === "admitted") ok++;
          return ok;
        },
        "core.enforce(peer), refused": (n) => {
          let ok = 0;
          for (let i = 0; i < n; i++)
            if ((core.enforce(bobPeer, procedure, "gate") as { kind: string }).kind === "refused") ok++;
          return ok;
        },
        "gate(context), admitted": (n) => {
          let ok = 0;
          for (let i = 0; i < n; i++) if (gate(aliceContext) === undefined) ok++;
          return ok;
        },
      };
    };
    const off = await variants({});
    const on = await variants({ meterProvider: provider });
    const onProcedure = await variants({ meterProvider: provider, metricsProcedure: true });
    const rows: [string, Loop, Loop][] = [
      [
        "core.enforce(peer), admitted",
        off["core.enforce(peer), admitted"] as Loop,
        on["core.enforce(peer), admitted"] as Loop,
      ],
      [
        "core.enforce(peer), admitted, metricsProcedure",
        off["core.enforce(peer), admitted"] as Loop,
        onProcedure["core.enforce(peer), admitted"] as Loop,
      ],
      [
        "core.enforce(peer), refused",
        off["core.enforce(peer), refused"] as Loop,
        on["core.enforce(peer), refused"] as Loop,
      ],
      ["gate(context), admitted", off["gate(context), admitted"] as Loop, on["gate(context), admitted"] as Loop],
    ];
    const pairs: Pair[] = [];
    for (const [name, a, b] of rows) {
      const n = iterations(a, batchMs);
      const offNs: number[] = [];
      const onNs: number[] = [];
      // Interleaved, so that drift of the machine hits both alike.
      for (let i = 0; i < batches; i++) {
        offNs.push(nsPerCall(a, n));
        onNs.push(nsPerCall(b, n));
      }
      pairs.push({ name, offNs: median(offNs), onNs: median(onNs) });
    }
    return { pairs, batches, batchMs };
  } finally {
    await provider.shutdown();
    await peers.close();
  }
}

function iterations(loop: (n: number) => number, batchMs: number): number {
  const probe = 20_000;
  const t0 = process.hrtime.bigint();
  loop(probe);
  const perCall = Number(process.hrtime.bigint() - t0) / probe;
  return Math.max(1_000, Math.min(5_000_000, Math.round((batchMs * 1e6) / Math.max(perCall, 0.1))));
}

function nsPerCall(loop: (n: number) => number, n: number): number {
  const t0 = process.hrtime.bigint();
  const check = loop(n);
  const ns = Number(process.hrtime.bigint() - t0);
  if (check !== n) throw new Error("metrics-cost: a measured call gave an unexpected answer");
  return ns / n;
}
