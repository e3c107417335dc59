import { readFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { create, toBinary } from "@bufbuild/protobuf";
import { EchoRequestSchema } from "../src/gen/certgate/example/v1/echo_pb.js";
import type { CertgateMode, EchoServerConfig, ServerWindow } from "./echo-server.js";
import type { GrpcJsMode, GrpcJsServerConfig } from "./grpc-js-server.js";
import { startChild, type ChildHandle } from "./ipc.js";
import type { LoadConfig, LoadWindow, WireProtocol } from "./load-generator.js";
import type { BenchOptions } from "./section.js";
import { fixed, median, percentSpread, spread, table, type Spread } from "./stats.js";

/** Above this share of the server's core taken by others, a run is disturbed. */
const disturbedShare = 0.1;

/** echoPath is the procedure every measured call goes to. */
export const echoPath = "/certgate.example.v1.EchoService/Echo";

/**
 * RunSpec describes one variant of an interleaved comparison: how the server
 * is guarded and what the load generator sends.
 */
export interface RunSpec {
  /** The variant's name in the report, such as `baseline` or `gate`. */
  readonly name: string;
  /** How certgate guards the echo server. */
  readonly certgate: CertgateMode;
  /** The RPC protocol of every call. */
  readonly protocol: WireProtocol;
  /** Which certificate the load generator presents. */
  readonly client: "alice" | "bob" | "none";
  /** What every call must get; anything else fails the run. */
  readonly expect: "ok" | "refused";
  /** A new connection (TLS handshake) per call. By default, false. */
  readonly connectionPerCall?: boolean;
  /**
   * The server: connect-node's echo server (echo-server.ts, guarded as
   * `certgate` says) or @grpc/grpc-js (grpc-js-server.ts, guarded as
   * `grpcJs` says; gRPC protocol only). By default, connect-node.
   */
  readonly server?: "connect-node" | "grpc-js";
  /** How the grpc-js server is guarded, with `server: "grpc-js"`. By default, not at all. */
  readonly grpcJs?: GrpcJsMode;
}

/**
 * RunMeasurement is one measured run: a fresh server, a warm-up, a window.
 */
export interface RunMeasurement {
  readonly variant: string;
  readonly round: number;
  readonly server: ServerWindow;
  readonly load: LoadWindow;
  /** Server CPU per call (requests counted by the server), µs. */
  readonly serverUsPerCall: number;
  /** Calls per second the server answered. */
  readonly callsPerSecond: number;
  /** Load generator CPU per call, µs. */
  readonly loadUsPerCall: number;
  /** Load generator CPU time over wall time: near 1 means it, not the server, was the limit. */
  readonly loadUtilization: number;
  /** Server CPU time over wall time: near 1 when the server is the bottleneck. */
  readonly serverUtilization: number;
  /**
   * Share of the server's core used by other processes (or stolen by the
   * hypervisor) during the window, 0..1; NaN when not pinned or not on Linux.
   */
  readonly interference: number;
}

// Busy and stolen time of one core from /proc/stat, in clock ticks.
interface CoreTimes {
  readonly busy: number;
  readonly steal: number;
  readonly total: number;
}

function coreTimes(core: number): CoreTimes | undefined {
  try {
    const line = readFileSync("/proc/stat", "utf8")
      .split("\n")
      .find((l) => l.startsWith(`cpu${core} `));
    if (line === undefined) return undefined;
    const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = line
      .trim()
      .split(/\s+/)
      .slice(1)
      .map(Number);
    return {
      busy: user + nice + system + irq + softirq,
      steal,
      total: user + nice + system + idle + iowait + irq + softirq + steal,
    };
  } catch {
    return undefined;
  }
}

// What else ran on the server's core during the window: its busy time minus
// the server's own CPU time, plus stolen time, as a share of the window.
function interferenceOf(before: CoreTimes | undefined, after: CoreTimes | undefined, server: ServerWindow): number {
  if (before === undefined || after === undefined) return NaN;
  const total = after.total - before.total;
  if (total <= 0) return NaN;
  const tickUs = server.wallUs / total;
  const otherUs = (after.busy - before.busy) * tickUs - server.cpuUs + (after.steal - before.steal) * tickUs;
  return Math.max(0, otherUs / server.wallUs);
}

/**
 * requestBody returns the pre-encoded body of one Echo call: the serialized
 * EchoRequest (Connect unary) or the same in a 5-byte gRPC frame.
 */
export function requestBody(protocol: WireProtocol, text = "hello certgate"): Buffer {
  const message = toBinary(EchoRequestSchema, create(EchoRequestSchema, { text }));
  if (protocol === "connect") return Buffer.from(message);
  const frame = Buffer.alloc(5 + message.length);
  frame.writeUInt8(0, 0);
  frame.writeUInt32BE(message.length, 1);
  frame.set(message, 5);
  return frame;
}

/**
 * measureRun starts a fresh echo server (pinned to core 0) and load generator
 * (core 1), warms up, measures one window in both processes, and stops them.
 */
export async function measureRun(spec: RunSpec, round: number, options: BenchOptions): Promise<RunMeasurement> {
  const { pki } = options;
  const profile =
    options.cpuProfDir === undefined
      ? {}
      : { profilePath: join(options.cpuProfDir, `${spec.protocol}-${spec.name}-r${round + 1}.cpuprofile`) };
  const common = { pins: [pki.alice.sha1], certPath: pki.server.certPath, keyPath: pki.server.keyPath, ...profile };
  const grpcJs = spec.server === "grpc-js";
  if (grpcJs && spec.protocol !== "grpc") throw new Error(`${spec.name}: the grpc-js server speaks gRPC only`);
  const serverConfig: EchoServerConfig | GrpcJsServerConfig = grpcJs
    ? { mode: spec.grpcJs ?? "none", caPath: pki.caPath, ...common }
    : { certgate: spec.certgate, ...common };
  const client = spec.client === "none" ? undefined : pki[spec.client];
  const loadConfig: LoadConfig = {
    protocol: spec.protocol,
    path: echoPath,
    body: requestBody(spec.protocol).toString("base64"),
    caPath: pki.caPath,
    ...(client === undefined ? {} : { certPath: client.certPath, keyPath: client.keyPath }),
    sessions: options.sessions,
    streams: options.streams,
    connectionPerCall: spec.connectionPerCall === true,
  };
  const started = await Promise.allSettled([
    startChild(grpcJs ? "./grpc-js-server.ts" : "./echo-server.ts", serverConfig, { core: 0, pin: options.pin }),
    startChild("./load-generator.ts", loadConfig, { core: 1, pin: options.pin }),
  ]);
  const children = started.flatMap((s) => (s.status === "fulfilled" ? [s.value] : []));
  try {
    for (const s of started) if (s.status === "rejected") throw s.reason;
    const [server, load] = children as [ChildHandle, ChildHandle];
    const port = await server.call<number>("listen");
    await load.call("connect", { port });
    await load.call("load");
    await sleep(options.warmupMs);
    await Promise.all([server.call("mark"), load.call("mark")]);
    const coreBefore = options.pin ? coreTimes(0) : undefined;
    await sleep(options.durationMs);
    const coreAfter = options.pin ? coreTimes(0) : undefined;
    const [serverWindow, loadWindow] = await Promise.all([
      server.call<ServerWindow>("report"),
      load.call<LoadWindow>("report"),
    ]);
    await load.call("stop");
    const got = spec.expect === "ok" ? loadWindow.ok : loadWindow.refused;
    const total = loadWindow.ok + loadWindow.refused + loadWindow.failed;
    if (total === 0 || got < total * 0.99) {
      throw new Error(
        `${spec.protocol} ${spec.name}: expected every call ${spec.expect === "ok" ? "admitted" : "refused"}, got ${loadWindow.ok} admitted, ${loadWindow.refused} refused, ${loadWindow.failed} failed${loadWindow.firstFailure === undefined ? "" : ` (first: ${loadWindow.firstFailure})`}`,
      );
    }
    const calls = serverWindow.requests;
    return {
      variant: spec.name,
      round,
      server: serverWindow,
      load: loadWindow,
      serverUsPerCall: serverWindow.cpuUs / calls,
      callsPerSecond: calls / (serverWindow.wallUs / 1e6),
      loadUsPerCall: loadWindow.cpuUs / total,
      loadUtilization: loadWindow.cpuUs / loadWindow.wallUs,
      serverUtilization: serverWindow.cpuUs / serverWindow.wallUs,
      interference: interferenceOf(coreBefore, coreAfter, serverWindow),
    };
  } finally {
    await Promise.all(children.map((c) => c.close()));
  }
}

/**
 * runRounds measures `specs` in `options.rounds` interleaved rounds, each run
 * on a fresh server: A B C, then C B A, and so on, so that a slow drift of the
 * machine does not favour one variant. Returns measurements[round][variant].
 */
export async function runRounds(
  label: string,
  specs: readonly RunSpec[],
  options: BenchOptions,
): Promise<RunMeasurement[][]> {
  const rounds: RunMeasurement[][] = [];
  for (let round = 0; round < options.rounds; round++) {
    const order = specs.map((_, i) => i);
    if (round % 2 === 1) order.reverse();
    const results: RunMeasurement[] = new Array(specs.length);
    for (const i of order) {
      const spec = specs[i] as RunSpec;
      let m = await measureRun(spec, round, options);
      for (let retry = 0; retry < (options.retryDisturbed ?? 0) && m.interference > disturbedShare; retry++) {
        options.log(
          `${label} round ${round + 1}/${options.rounds} ${spec.name}: others took ${fixed(m.interference * 100, 0)}% of the server's core, measuring again`,
        );
        m = await measureRun(spec, round, options);
      }
      results[i] = m;
      options.log(
        `${label} round ${round + 1}/${options.rounds} ${spec.name}: ${fixed(m.serverUsPerCall)} µs/call, ${Math.round(m.callsPerSecond)} calls/s, server CPU ${fixed(m.serverUtilization * 100, 0)}%, load ${fixed(m.loadUsPerCall)} µs/call${Number.isFinite(m.interference) ? `, others on the server's core ${fixed(m.interference * 100, 0)}%` : ""}`,
      );
    }
    rounds.push(results);
  }
  return rounds;
}

/**
 * VariantSummary is the median figures of one variant over all rounds, and
 * its per-round ratios to the reference variant.
 */
export interface VariantSummary {
  readonly variant: string;
  /** Median server CPU per call, µs. */
  readonly serverUsPerCall: number;
  /** Median calls per second. */
  readonly callsPerSecond: number;
  /** Median load generator CPU per call, µs. */
  readonly loadUsPerCall: number;
  /** Median load generator CPU over wall time. */
  readonly loadUtilization: number;
  /** Median server CPU over wall time. */
  readonly serverUtilization: number;
  /** Median share of the server's core taken by other processes, 0..1 (NaN: unknown). */
  readonly interference: number;
  /** Server µs per call, this variant / the reference, per round. */
  readonly cpuRatio: Spread | undefined;
  /** Calls per second, this variant / the reference, per round. */
  readonly rateRatio: Spread | undefined;
}

/**
 * summarize reduces interleaved rounds to medians and, when `reference` names
 * a variant, the median of per-pair ratios against it with min..max.
 */
export function summarize(
  specs: readonly RunSpec[],
  rounds: readonly (readonly RunMeasurement[])[],
  reference: string | undefined,
): { summaries: VariantSummary[]; lines: string[]; warnings: string[] } {
  const refIndex = specs.findIndex((s) => s.name === reference);
  const warnings: string[] = [];
  const summaries = specs.map((spec, i): VariantSummary => {
    const runs = rounds.map((r) => r[i] as RunMeasurement);
    const ratios = (pick: (m: RunMeasurement) => number) =>
      refIndex < 0 || refIndex === i
        ? undefined
        : spread(rounds.map((r) => pick(r[i] as RunMeasurement) / pick(r[refIndex] as RunMeasurement)));
    const s: VariantSummary = {
      variant: spec.name,
      serverUsPerCall: median(runs.map((m) => m.serverUsPerCall)),
      callsPerSecond: median(runs.map((m) => m.callsPerSecond)),
      loadUsPerCall: median(runs.map((m) => m.loadUsPerCall)),
      loadUtilization: median(runs.map((m) => m.loadUtilization)),
      serverUtilization: median(runs.map((m) => m.serverUtilization)),
      interference: median(runs.map((m) => m.interference)),
      cpuRatio: ratios((m) => m.serverUsPerCall),
      rateRatio: ratios((m) => m.callsPerSecond),
    };
    const disturbed = runs.filter((m) => m.interference > disturbedShare).length;
    if (disturbed > 0) {
      warnings.push(
        `${spec.protocol} ${spec.name}: in ${disturbed} of ${runs.length} runs other processes took more than ${disturbedShare * 100}% of the server's core: figures are noisy (re-run on a quiet machine, or with --retry-disturbed N)`,
      );
    }
    // Idle time that no other process explains: the load generator did not
    // keep the server busy.
    const idle = 1 - s.serverUtilization - (Number.isFinite(s.interference) ? s.interference : 0);
    if (idle > 0.1) {
      warnings.push(
        `${spec.protocol} ${spec.name}: the server was idle ${fixed(idle * 100, 0)}% of the window: the load generator limited the run, so calls/s understates the server`,
      );
    }
    if (s.loadUtilization > 0.9) {
      warnings.push(
        `${spec.protocol} ${spec.name}: the load generator used ${fixed(s.loadUtilization * 100, 0)}% of its core: it may be the bottleneck`,
      );
    }
    const failed = runs.reduce((n, m) => n + m.load.failed, 0);
    if (failed > 0) warnings.push(`${spec.protocol} ${spec.name}: ${failed} calls failed during measurement windows`);
    return s;
  });
  const rows = summaries.map((s) => [
    s.variant,
    fixed(s.serverUsPerCall),
    String(Math.round(s.callsPerSecond)),
    fixed(s.loadUsPerCall),
    `${fixed(s.serverUtilization * 100, 0)}%`,
    Number.isFinite(s.interference) ? `${fixed(s.interference * 100, 0)}%` : "n/a",
    s.cpuRatio === undefined ? "(reference)" : percentSpread(s.cpuRatio),
    s.rateRatio === undefined ? "(reference)" : percentSpread(s.rateRatio),
  ]);
  const headers = ["variant", "server µs/call", "calls/s", "load µs/call", "server CPU", "others on core"];
  if (refIndex >= 0) headers.push(`µs/call vs ${reference} (min..max)`, `calls/s vs ${reference} (min..max)`);
  const lines = table(
    headers,
    rows.map((r) => r.slice(0, headers.length)),
  );
  return { summaries, lines, warnings };
}
