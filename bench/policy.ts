// policy: what the full validation policy costs per call against the bare
// thumbprint check. The full policy: a pinned thumbprint, plus chain
// validation against the CA, a CRL of 10,000 revoked serials, clientAuth
// usage, and two identities (the first does not match, so both are tried).
//
// 1. In process: the decision core on a warm connection (ns per call) and on
//    a new connection per call (µs per call, certificate parsing included).
// 2. With bench/run.ts's load generator: server CPU per call and calls/s on
//    persistent HTTP/2 connections, and with a new TLS connection per call.
//
// As a child process (started by `run` below) this file is the echo server.
import { readFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { ConnectRouter } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { parseCertificate } from "../src/core/certificate.js";
import { createDecisionCore, type ClientCertOptions } from "../src/decision/decision.js";
import { EchoService } from "../src/gen/certgate/example/v1/echo_pb.js";
import {
  createClientCertGate,
  createThumbprintStore,
  peerCertificateContextValues,
  type PeerCertificate,
} from "../src/index.js";
import type { CertificateIdentity } from "../src/policy/identity-match.js";
import { createCrl } from "../test/support/policy-pki.js";
import { createWindowMeter, type ServerWindow } from "./server-window.js";
import { childConfig, serveParent, startChild, tasksetWorks, type ChildHandle } from "./ipc.js";
import type { LoadConfig, LoadWindow, WireProtocol } from "./load-generator.js";
import { echoPath, requestBody, summarize, type RunMeasurement, type RunSpec } from "./load-run.js";
import { createBenchPki, type BenchPki } from "./pki.js";
import type { BenchOptions, SectionResult } from "./section.js";
import { fixed, median, percent, table } from "./stats.js";

/** The issue's target: the full policy costs at most 5% of throughput on persistent connections. */
const target = 0.95;

/** What the policy server child is started with. */
interface PolicyServerConfig {
  mode: "thumbprint" | "policy";
  certPath: string;
  keyPath: string;
  pin: string;
  caPath: string;
  crlPath: string;
  identities: CertificateIdentity[];
}

function certgateOptions(
  mode: "thumbprint" | "policy",
  pin: string,
  ca: string,
  crl: string,
  identities: CertificateIdentity[],
): ClientCertOptions {
  const store = createThumbprintStore(pin);
  if (mode === "thumbprint") return { store };
  return {
    store,
    validateTrust: { ca: [ca] },
    validateRevocation: { crls: [crl] },
    requireClientAuthUsage: true,
    identities,
  };
}

// The child: an echo server guarded by the gate, reporting its CPU time.
function serve(config: PolicyServerConfig): void {
  let requests = 0;
  let admitted = 0;
  let connections = 0;
  const options = certgateOptions(
    config.mode,
    config.pin,
    readFileSync(config.caPath, "utf8"),
    readFileSync(config.crlPath, "utf8"),
    config.identities,
  );
  const adapter = connectNodeAdapter({
    routes: (router: ConnectRouter) =>
      router.service(EchoService, {
        echo(req) {
          admitted++;
          return { text: req.text };
        },
      }),
    requestGate: createClientCertGate(options),
    contextValues: peerCertificateContextValues,
  });
  const server = http2.createSecureServer(
    {
      cert: readFileSync(config.certPath),
      key: readFileSync(config.keyPath),
      requestCert: true,
      rejectUnauthorized: false,
    },
    (req, res) => {
      requests++;
      adapter(req, res);
    },
  );
  server.on("secureConnection", () => connections++);
  server.on("sessionError", () => undefined);
  const meter = createWindowMeter(() => ({ requests, admitted, connections }));
  serveParent({
    listen: () =>
      new Promise<number>((resolve) =>
        server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port)),
      ),
    mark: () => {
      meter.mark();
      return null;
    },
    report: (): ServerWindow => meter.report(),
  });
}

interface Fixture {
  readonly pki: BenchPki;
  readonly crlPath: string;
  readonly crl: string;
  readonly identities: CertificateIdentity[];
}

async function fixture(pki: BenchPki): Promise<Fixture> {
  const revoked = Array.from({ length: 10_000 }, (_, i) => (0x7000000 + i).toString(16));
  const crl = await createCrl(pki.issued.ca, { revoked });
  const crlPath = join(pki.dir, "ca.crl");
  await writeFile(crlPath, crl);
  const identities: CertificateIdentity[] = [
    { commonName: "carol", issuerSubject: "CN=certgate bench CA" },
    { subject: "CN=alice", issuerThumbprint: parseCertificate(pki.issued.ca.cert).sha256 },
  ];
  return { pki, crlPath, crl, identities };
}

// In process: ns per warm decision, µs per decision on a new connection.
// The two cores are measured in alternating batches, so that neither gains
// from running first (JIT warm-up) or last.
async function inProcess(f: Fixture, quick: boolean): Promise<{ lines: string[]; data: unknown }> {
  const { issued } = f.pki;
  const der = parseCertificate(issued.alice.cert).der;
  const peerOf = (): PeerCertificate => ({
    certificate: parseCertificate(der),
    authorized: false,
    authorizationError: undefined,
    encrypted: true,
  });
  const modes = ["thumbprint", "policy"] as const;
  const cores = modes.map(
    (mode) => createDecisionCore(certgateOptions(mode, f.pki.alice.sha1, issued.ca.cert, f.crl, f.identities)).decide,
  );
  const peers = modes.map(() => peerOf());
  for (let k = 0; k < modes.length; k++) {
    if ((await cores[k]?.(peers[k]))?.kind !== "admitted")
      throw new Error(`policy bench: alice not admitted (${modes[k]})`);
  }
  const warm: number[][] = [[], []];
  const fresh: number[][] = [[], []];
  const n = quick ? 200_000 : 2_000_000;
  const m = quick ? 300 : 2_000;
  for (let b = 0; b < (quick ? 4 : 10); b++) {
    for (const k of b % 2 === 0 ? [0, 1] : [1, 0]) {
      const decide = cores[k] as (p: PeerCertificate) => unknown;
      const peer = peers[k] as PeerCertificate;
      let t0 = process.hrtime.bigint();
      for (let i = 0; i < n; i++) {
        if (decide(peer) instanceof Promise) throw new Error("policy bench: a warm decision was not synchronous");
      }
      warm[k]?.push(Number(process.hrtime.bigint() - t0) / n);
      t0 = process.hrtime.bigint();
      for (let i = 0; i < m; i++) await decide(peerOf());
      fresh[k]?.push(Number(process.hrtime.bigint() - t0) / m / 1000);
    }
  }
  const data: Record<string, { warmNs: number; newConnectionUs: number }> = {};
  const rows = modes.map((mode, k) => {
    data[mode] = { warmNs: median(warm[k] ?? []), newConnectionUs: median(fresh[k] ?? []) };
    return [
      mode === "policy" ? "full policy" : "thumbprint only",
      fixed(median(warm[k] ?? [])),
      fixed(median(fresh[k] ?? [])),
    ];
  });
  return { lines: table(["decision core", "warm connection ns/call", "new connection µs/call"], rows), data };
}

async function measure(
  spec: RunSpec,
  mode: "thumbprint" | "policy",
  round: number,
  options: BenchOptions,
  f: Fixture,
): Promise<RunMeasurement> {
  const { pki } = options;
  const serverConfig: PolicyServerConfig = {
    mode,
    certPath: pki.server.certPath,
    keyPath: pki.server.keyPath,
    pin: pki.alice.sha1,
    caPath: pki.caPath,
    crlPath: f.crlPath,
    identities: f.identities,
  };
  const loadConfig: LoadConfig = {
    protocol: spec.protocol,
    path: echoPath,
    body: requestBody(spec.protocol).toString("base64"),
    caPath: pki.caPath,
    certPath: pki.alice.certPath,
    keyPath: pki.alice.keyPath,
    sessions: options.sessions,
    streams: spec.connectionPerCall === true ? 16 : options.streams,
    connectionPerCall: spec.connectionPerCall === true,
  };
  const started = await Promise.allSettled([
    startChild("./policy.ts", serverConfig, { core: 0, pin: options.pin }),
    startChild("./load-generator.ts", loadConfig, { core: 1, pin: options.pin }),
  ]);
  const children = started.flatMap((s) => (s.status === "fulfilled" ? [s.value] : []));
  try {
    for (const s of started) if (s.status === "rejected") throw s.reason;
    const [server, load] = children as [ChildHandle, ChildHandle];
    await load.call("connect", { port: await server.call<number>("listen") });
    await load.call("load");
    await sleep(options.warmupMs);
    await Promise.all([server.call("mark"), load.call("mark")]);
    await sleep(options.durationMs);
    const [s, l] = await Promise.all([server.call<ServerWindow>("report"), load.call<LoadWindow>("report")]);
    await load.call("stop");
    const total = l.ok + l.refused + l.failed;
    if (total === 0 || l.ok < total * 0.99) {
      throw new Error(
        `policy ${spec.name}: expected every call admitted, got ${l.ok} of ${total}${l.firstFailure === undefined ? "" : ` (first failure: ${l.firstFailure})`}`,
      );
    }
    return {
      variant: spec.name,
      round,
      server: s,
      load: l,
      serverUsPerCall: s.cpuUs / s.requests,
      callsPerSecond: s.requests / (s.wallUs / 1e6),
      loadUsPerCall: l.cpuUs / total,
      loadUtilization: l.cpuUs / l.wallUs,
      serverUtilization: s.cpuUs / s.wallUs,
      interference: NaN,
    };
  } finally {
    await Promise.all(children.map((c) => c.close()));
  }
}

function defaults(options: Partial<BenchOptions> & { quick?: boolean }, pki: BenchPki, pin: boolean): BenchOptions {
  const quick = options.quick === true;
  return {
    rounds: options.rounds ?? (quick ? 2 : 5),
    warmupMs: options.warmupMs ?? (quick ? 1000 : 3000),
    durationMs: options.durationMs ?? (quick ? 2000 : 8000),
    quick,
    protocols: options.protocols,
    variants: options.variants,
    sessions: options.sessions ?? 4,
    streams: options.streams ?? 64,
    pin: options.pin ?? pin,
    cpuProfDir: undefined,
    pki,
    log: options.log ?? ((line: string) => console.log(line)),
  };
}

/**
 * run measures the full policy against the bare thumbprint check, in process
 * and under load. Called by bench/run.ts with its options, or with just
 * `{ quick }`.
 */
export async function run(given: Partial<BenchOptions> & { quick?: boolean } = {}): Promise<SectionResult> {
  const ownPki = given.pki === undefined ? await createBenchPki() : undefined;
  const options = defaults(given, given.pki ?? (ownPki as BenchPki), given.pin ?? tasksetWorks());
  try {
    const f = await fixture(options.pki);
    const lines: string[] = ["In process (the decision core alone):"];
    const local = await inProcess(f, options.quick);
    lines.push(...local.lines, "");
    const warnings: string[] = [];
    const data: Record<string, unknown> = { inProcess: local.data };
    const protocols: WireProtocol[] = options.protocols ?? ["connect"];
    for (const protocol of protocols) {
      for (const perCall of [false, true]) {
        const specs: RunSpec[] = (["thumbprint", "policy"] as const).map((mode) => ({
          name: mode,
          certgate: "gate",
          protocol,
          client: "alice",
          expect: "ok",
          connectionPerCall: perCall,
        }));
        const rounds: RunMeasurement[][] = [];
        for (let round = 0; round < options.rounds; round++) {
          const order = round % 2 === 0 ? [0, 1] : [1, 0];
          const results: RunMeasurement[] = [];
          for (const i of order) {
            const spec = specs[i] as RunSpec;
            const m = await measure(spec, spec.name as "thumbprint" | "policy", round, options, f);
            results[i] = m;
            options.log(
              `policy ${protocol}${perCall ? " new-connection" : ""} round ${round + 1}/${options.rounds} ${spec.name}: ${fixed(m.serverUsPerCall)} µs/call, ${Math.round(m.callsPerSecond)} calls/s`,
            );
          }
          rounds.push(results);
        }
        const summary = summarize(specs, rounds, "thumbprint");
        const label = perCall
          ? "one call per new TLS connection (16 at a time)"
          : `${options.streams} calls in flight on ${options.sessions} persistent HTTP/2 connections`;
        lines.push(
          `${protocol === "connect" ? "Connect" : "gRPC"} protocol, request gate, ${label}, ${options.rounds} rounds (medians):`,
          ...summary.lines,
        );
        const policy = summary.summaries.find((s) => s.variant === "policy");
        if (policy?.rateRatio !== undefined) {
          const verdict = perCall ? "" : ` (${policy.rateRatio.median >= target ? "within" : "over"} the 5% target)`;
          lines.push(
            `  full policy: calls/s ${percent(policy.rateRatio.median)} against the thumbprint check${verdict}`,
          );
        }
        lines.push("");
        warnings.push(...summary.warnings.filter((w) => !w.includes("others")));
        data[`${protocol}${perCall ? "-new-connection" : ""}`] = summary.summaries;
      }
    }
    return { title: "policy: the full validation policy against the bare thumbprint check", lines, warnings, data };
  } finally {
    await ownPki?.close();
  }
}

if (process.send !== undefined && /policy\.ts$/.test(process.argv[1] ?? "")) {
  serve(childConfig<PolicyServerConfig>());
} else if (/policy\.ts$/.test(process.argv[1] ?? "")) {
  // `npx tsx bench/policy.ts [--quick]`: run this section alone.
  const result = await run({ quick: process.argv.includes("--quick") });
  console.log([result.title, "", ...result.lines, ...result.warnings.map((w) => `warning: ${w}`)].join("\n"));
}
