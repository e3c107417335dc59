// new-connection: what certgate adds when every call opens a new TLS
// connection, so that the per-connection work (reading the peer certificate,
// hashing its thumbprints, the store look-up) is paid on every call. Not in
// the default run: a TLS handshake costs the load generator about as much as
// the server, so resolution is coarse (±15–20%).
import * as tls from "node:tls";
import type { AddressInfo } from "node:net";
import { readFileSync } from "node:fs";
import { readPeerCertificate, type TlsSocketLike } from "../src/core/peer-certificate.js";
import { createDecisionCore } from "../src/decision/decision.js";
import type { Enforcement } from "../src/core/enforcement.js";
import { createMemoryStore } from "../src/stores/memory-store.js";
import { issueDevCertificate } from "../src/dev-certificates.js";
import type { CertgateMode } from "./echo-server.js";
import type { WireProtocol } from "./load-generator.js";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { measureRun, runRounds, summarize, type RunSpec, type VariantSummary } from "./load-run.js";
import { inclusiveShare, isCertgateSource, type CpuProfile } from "./profile.js";
import type { BenchOptions, SectionResult } from "./section.js";
import { fixed, median, percent } from "./stats.js";

const allVariants: Record<string, CertgateMode> = {
  baseline: "none",
  interceptor: "interceptor",
  gate: "gate",
  both: "both",
};
/** variants lists the names `--variants` may pick here. */
export const variants: readonly string[] = Object.keys(allVariants);
const defaultVariants = ["baseline", "gate"];
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
  // A CPU profile of one gate run: every sample with a certgate frame on its
  // stack (the peer read, getPeerCertificate, the decision)
  // over the server's busy time. Other processes hardly move a share.
  const dir = options.cpuProfDir ?? (await mkdtemp(join(tmpdir(), "certgate-bench-prof-")));
  let share: number;
  let profiledUs: number;
  try {
    const spec: RunSpec = {
      name: "gate-profiled",
      certgate: "gate",
      protocol: "connect",
      client: "alice",
      expect: "ok",
      connectionPerCall: true,
    };
    const m = await measureRun(spec, 0, { ...perCall, cpuProfDir: dir });
    const profile = JSON.parse(await readFile(join(dir, "connect-gate-profiled-r1.cpuprofile"), "utf8")) as CpuProfile;
    share = inclusiveShare(profile, isCertgateSource);
    profiledUs = m.serverUsPerCall;
  } finally {
    if (options.cpuProfDir === undefined) await rm(dir, { recursive: true, force: true });
  }
  lines.push(
    `CPU profile of one gate run (one call per new connection): certgate and what it calls take ${fixed(share * 100, 2)}% of the server's busy time`,
    `  (${fixed(share * profiledUs)} µs of ${fixed(profiledUs)} µs per call and connection; the profile over-attributes native calls, so the targets are judged in process below)`,
  );
  const inProcess = await perConnectionWork(options);
  const base = data.connect?.find((v) => v.variant === "baseline")?.serverUsPerCall;
  // The targets: certgate's own work on a new connection, against a bare
  // handshake plus call, at most 3% for a returning certificate and 6% for a
  // first-seen one (Node's cheapest public read of the certificate is already
  // most of the first).
  const against = (us: number, target: number) =>
    base === undefined
      ? ""
      : `  ${percent(1 + us / base)} (${us / base <= target ? "within" : "over"} the ${target * 100}% target)`;
  lines.push(
    `In process, on ${inProcess.connections} real mTLS connections (median wall µs of the synchronous work, interleaved): what certgate does once per connection,`,
    "reading the peer certificate and its first decision (memory store, admitted; clients send their CA too),",
    base === undefined ? "" : `against the baseline's ${fixed(base)} µs of server CPU per call and connection:`,
    `  returning client (certificate seen before):        ${fixed(inProcess.returningUs).padStart(6)} µs${against(inProcess.returningUs, 0.03)}`,
    `  certificate seen for the first time:               ${fixed(inProcess.firstSeenUs).padStart(6)} µs${against(inProcess.firstSeenUs, 0.06)}`,
    `  returning client, read with getPeerCertificate():  ${fixed(inProcess.peerInfoUs).padStart(6)} µs`,
    `  returning client, read with getPeerX509Certificate(): ${fixed(inProcess.x509Us).padStart(6)} µs`,
  );
  return {
    title: "new-connection: server CPU per call when every call opens a new connection",
    lines,
    warnings,
    data: { ...data, inProcess },
  };
}

/**
 * PerConnectionWork is what certgate's once-per-connection work costs in
 * process, median wall µs per connection.
 */
export interface PerConnectionWork {
  readonly connections: number;
  /** A client whose certificate certgate has seen (the usual case: API clients reconnect). */
  readonly returningUs: number;
  /** A certificate seen for the first time: read, validity, hash and a decision. */
  readonly firstSeenUs: number;
  /** The same client, its certificate read with getPeerCertificate(false). */
  readonly peerInfoUs: number;
  /** The same client, read with getPeerX509Certificate(). */
  readonly x509Us: number;
}

/**
 * perConnectionWork measures, inside a TLS server, what certgate does once
 * per connection: readPeerCertificate (the DER from the TLS session) and the
 * first decision on a store that answers from memory, so the decision is
 * made at once. Four cases, interleaved per connection: a returning client;
 * a client certificate seen for the first time (each connection its own);
 * and the earlier read paths on a socket without `getSession`, Node's
 * `getPeerCertificate(false)` and `getPeerX509Certificate()` (which copies
 * and re-parses every chain certificate the client sent; the clients here
 * send their CA, as Node clients with `ca` do).
 *
 * Wall time of one synchronous stretch, median over connections: CPU time
 * from `process.cpuUsage()` counts every thread of the process and is too
 * coarse for tens of microseconds; a preempted stretch is an outlier that
 * the median ignores.
 */
export async function perConnectionWork(options: BenchOptions): Promise<PerConnectionWork> {
  const { pki } = options;
  const total = options.quick ? 400 : 2000;
  const fresh = await Promise.all(
    Array.from({ length: Math.ceil(total / 4) }, (_, i) =>
      issueDevCertificate(pki.issued.ca, { commonName: `first-seen ${i}`, usages: ["client"] }),
    ),
  );
  const store = createMemoryStore();
  for (const [i, c] of [pki.issued.alice, ...fresh].entries()) await store.put(`client-${i}`, c.der);
  const core = createDecisionCore({ store });
  const times: number[][] = [[], [], [], []];
  let n = 0;
  const server = tls.createServer(
    {
      cert: readFileSync(pki.server.certPath),
      key: readFileSync(pki.server.keyPath),
      requestCert: true,
      rejectUnauthorized: false,
    },
    (socket) => {
      const variant = n++ % 4;
      const base = { encrypted: true, authorized: socket.authorized, authorizationError: socket.authorizationError };
      const like: TlsSocketLike =
        variant <= 1
          ? (socket as unknown as TlsSocketLike)
          : variant === 2
            ? {
                ...base,
                getPeerX509Certificate: () => socket.getPeerX509Certificate(),
                getPeerCertificate: () => socket.getPeerCertificate(false),
              }
            : { ...base, getPeerX509Certificate: () => socket.getPeerX509Certificate() };
      const t0 = process.hrtime.bigint();
      const peer = readPeerCertificate(socket, () => like);
      const result = core.enforce(peer, "/certgate.example.v1.EchoService/Echo", "gate");
      const done = (r: Enforcement) => {
        times[variant]!.push(Number(process.hrtime.bigint() - t0) / 1000);
        if (r.kind !== "admitted") throw new Error(`new-connection: expected an admission, got ${r.kind}`);
        socket.end();
      };
      if (result instanceof Promise) void result.then(done);
      else done(result);
    },
  );
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  const ca = readFileSync(pki.caPath);
  const alice = { cert: readFileSync(pki.alice.certPath), key: readFileSync(pki.alice.keyPath) };
  for (let i = 0; i < total; i++) {
    const first = fresh[Math.floor(i / 4)];
    const client = i % 4 === 1 && first !== undefined ? { cert: first.cert, key: first.key } : alice;
    await new Promise<void>((resolve, reject) => {
      const socket = tls.connect({ port, host: "127.0.0.1", servername: "localhost", ca, ...client });
      socket.on("data", () => {});
      socket.on("error", reject);
      socket.on("close", () => resolve());
    });
  }
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await store.close();
  const [returningUs, firstSeenUs, peerInfoUs, x509Us] = times.map((t) => median(t)) as [
    number,
    number,
    number,
    number,
  ];
  return { connections: total, returningUs, firstSeenUs, peerInfoUs, x509Us };
}
