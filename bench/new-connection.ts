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
import { createThumbprintStore } from "../src/stores/thumbprint-store.js";
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
    `  (${fixed(share * profiledUs)} µs of ${fixed(profiledUs)} µs per call and connection; ${share <= 0.02 ? "within" : "over"} the 2% target)`,
  );
  const inProcess = await perConnectionWork(options);
  const base = data.connect?.find((v) => v.variant === "baseline")?.serverUsPerCall;
  lines.push(
    `In process, on ${inProcess.connections} real mTLS connections (median CPU µs per connection, interleaved): what certgate does once per connection,`,
    "reading the peer certificate and its first decision (thumbprint store, admitted):",
    `  certgate now (getPeerCertificate(false), fields read when asked for):  ${fixed(inProcess.lazyUs)} µs`,
    `  getPeerX509Certificate(), fields read when asked for (before):          ${fixed(inProcess.x509Us)} µs`,
    `  getPeerX509Certificate(), every field read up front (earlier):          ${fixed(inProcess.eagerUs)} µs`,
  );
  if (base !== undefined) {
    const share = inProcess.lazyUs / base;
    lines.push(
      `  against the baseline's ${fixed(base)} µs of server CPU per call and connection: ${percent(1 + share)} (${share <= 0.02 ? "within" : "over"} the 2% target)`,
    );
  }
  return {
    title: "new-connection: server CPU per call when every call opens a new connection",
    lines,
    warnings,
    data,
  };
}

/**
 * perConnectionWork measures, inside a TLS server, what certgate does once
 * per connection: readPeerCertificate (Node's getPeerCertificate(false): a
 * thumbprint and the validity) and the first decision on a thumbprint store,
 * settled. Interleaved with it, the earlier read paths: through Node's
 * X509Certificate (`getPeerX509Certificate()`), with fields read on demand
 * ("x509") and with every field read up front ("eager").
 */
export async function perConnectionWork(
  options: BenchOptions,
): Promise<{ connections: number; lazyUs: number; x509Us: number; eagerUs: number }> {
  const { pki } = options;
  const core = createDecisionCore({ store: createThumbprintStore(pki.alice.sha256) });
  const lazy: number[] = [];
  const x509: number[] = [];
  const eager: number[] = [];
  let n = 0;
  const server = tls.createServer(
    {
      cert: readFileSync(pki.server.certPath),
      key: readFileSync(pki.server.keyPath),
      requestCert: true,
      rejectUnauthorized: false,
    },
    (socket) => {
      const variant = n++ % 3;
      const readAll = variant === 2;
      // Without getPeerCertificate, certgate reads getPeerX509Certificate().
      const viaX509: TlsSocketLike = {
        encrypted: true,
        authorized: socket.authorized,
        authorizationError: socket.authorizationError,
        getPeerX509Certificate: () => socket.getPeerX509Certificate(),
      };
      // CPU time, not wall time: the machine may be busy; nothing else runs
      // between this callback and the microtasks that settle the decision.
      const t0 = process.cpuUsage();
      const peer = readPeerCertificate(socket, () => (variant === 0 ? (socket as unknown as TlsSocketLike) : viaX509));
      const c = peer.certificate;
      if (readAll && c !== undefined) {
        void [
          c.sha1,
          c.sha256,
          c.subject,
          c.issuer,
          c.serialNumber,
          c.notBefore,
          c.notAfter,
          c.subjectAltNames,
          c.isCA,
        ];
      }
      const result = core.enforce(peer, "/certgate.example.v1.EchoService/Echo", "gate");
      void Promise.resolve(result).then((r) => {
        const used = process.cpuUsage(t0);
        [lazy, x509, eager][variant]!.push(used.user + used.system);
        if (r.kind !== "admitted") throw new Error(`new-connection: expected an admission, got ${r.kind}`);
        socket.end();
      });
    },
  );
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  const total = options.quick ? 150 : 600;
  const client = {
    ca: readFileSync(pki.caPath),
    cert: readFileSync(pki.alice.certPath),
    key: readFileSync(pki.alice.keyPath),
  };
  for (let i = 0; i < total; i++) {
    await new Promise<void>((resolve, reject) => {
      const socket = tls.connect({ port, host: "127.0.0.1", servername: "localhost", ...client });
      socket.on("data", () => {});
      socket.on("error", reject);
      socket.on("close", () => resolve());
    });
  }
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return { connections: total, lazyUs: median(lazy), x509Us: median(x509), eagerUs: median(eager) };
}
