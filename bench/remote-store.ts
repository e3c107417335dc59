// remote-store: how fast a deletion in the certificate store service reaches
// an API server using createRemoteStore (mirror mode), what a look-up costs in
// lookup mode with a cold and a warm cache, and the calls per second of an API
// server with the mirror against the same server with the thumbprint store.
//
// The service and the API server run in this process, over real TLS on
// 127.0.0.1; the load of the calls/s comparison comes from bench/'s load
// generator in its own process. Run it with `npm run bench -- --only
// remote-store`, or alone: `npx tsx bench/remote-store.ts [--quick]`.
import { spawnSync } from "node:child_process";
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { pathToFileURL } from "node:url";
import { Code, ConnectError, createClient, type ConnectRouter } from "@connectrpc/connect";
import { connectNodeAdapter, createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { EchoService } from "../src/gen/certgate/example/v1/echo_pb.js";
import { CertificateStoreService } from "../src/gen/certgate/v1/certificate_store_pb.js";
import { parseCertificate, type Certificate } from "../src/core/certificate.js";
import { issueDevCertificate } from "../src/dev-certificates.js";
import { createClientCertInterceptor } from "../src/connect/client-cert-interceptor.js";
import { peerCertificateContextValues } from "../src/connect/context-values.js";
import type { CertificateStore } from "../src/core/store.js";
import { createMemoryStore } from "../src/stores/memory-store.js";
import { createRemoteStore } from "../src/stores/remote-store.js";
import { createThumbprintStore } from "../src/stores/thumbprint-store.js";
import { createCertificateStoreServer } from "../src/service/certificate-store-server.js";
import { startChild, tasksetWorks } from "./ipc.js";
import type { LoadConfig, LoadWindow, WireProtocol } from "./load-generator.js";
import { echoPath, requestBody } from "./load-run.js";
import { createBenchPki, type BenchPki } from "./pki.js";
import type { BenchOptions, SectionResult } from "./section.js";
import { fixed, median, spread } from "./stats.js";

/**
 * RemoteStoreBenchOptions is what `run` takes: bench/run.ts's options, all
 * optional, so that the section also runs alone.
 */
export type RemoteStoreBenchOptions = Partial<BenchOptions> & { quick?: boolean };

function echoRoutes(router: ConnectRouter): void {
  router.service(EchoService, { echo: (req) => ({ text: req.text }) });
}

/**
 * startApiServer runs an Echo API server guarded by `store`, on 127.0.0.1, port 0.
 */
export async function startApiServer(
  pki: BenchPki,
  store: CertificateStore,
): Promise<{ url: string; port: number; close(): Promise<void> }> {
  const server = http2.createSecureServer(
    { cert: pki.issued.server.cert, key: pki.issued.server.key, requestCert: true, rejectUnauthorized: false },
    connectNodeAdapter({
      routes: echoRoutes,
      interceptors: [createClientCertInterceptor({ store })],
      contextValues: peerCertificateContextValues,
    }),
  );
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on("session", (s: http2.ServerHttp2Session) => {
    sessions.add(s);
    s.on("close", () => sessions.delete(s));
  });
  server.on("sessionError", () => undefined);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `https://127.0.0.1:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sessions) s.destroy();
      }),
  };
}

/**
 * admitted calls and tells whether the call was admitted (false on Unauthenticated).
 */
export async function admitted(call: () => Promise<unknown>): Promise<boolean> {
  try {
    await call();
    return true;
  } catch (error) {
    if (ConnectError.from(error).code !== Code.Unauthenticated) throw error;
    return false;
  }
}

/**
 * run measures the three figures; see the file comment.
 */
export async function run(options: RemoteStoreBenchOptions = {}): Promise<SectionResult> {
  const quick = options.quick === true;
  const log = options.log ?? ((line: string) => console.log(`  · ${line}`));
  const ownPki = options.pki === undefined;
  const pki = options.pki ?? (await createBenchPki());
  const issued = pki.issued;
  const admin = await issueDevCertificate(issued.ca, { commonName: "bench admin", usages: ["client"] });
  const reader = await issueDevCertificate(issued.ca, { commonName: "bench reader", usages: ["client"] });
  const store = createMemoryStore();
  const service = createCertificateStoreServer({
    store,
    cert: issued.server.cert,
    key: issued.server.key,
    access: {
      admin: { thumbprints: [parseCertificate(admin.der).sha256] },
      reader: { thumbprints: [parseCertificate(reader.der).sha256] },
    },
  });
  const { url: serviceUrl } = await service.listen();
  const nodeOptions = (who: { cert: string; key: string }) => ({ ca: issued.ca.cert, cert: who.cert, key: who.key });
  const storeAdmin = createClient(
    CertificateStoreService,
    createGrpcTransport({ baseUrl: serviceUrl, nodeOptions: nodeOptions(admin) }),
  );
  const remote = createRemoteStore({
    transport: createGrpcTransport({ baseUrl: serviceUrl, nodeOptions: nodeOptions(reader) }),
  });
  const lines: string[] = [];
  const warnings: string[] = [];
  const data: Record<string, unknown> = {};
  try {
    await remote.ready(10_000);

    // 1. DeleteCertificate returning → first refused call on the API server.
    const api = await startApiServer(pki, remote);
    const alice = createClient(
      EchoService,
      createConnectTransport({ baseUrl: api.url, httpVersion: "2", nodeOptions: nodeOptions(issued.alice) }),
    );
    const echo = () => alice.echo({ text: "hi" });
    const samples: number[] = [];
    const runs = quick ? 5 : 20;
    for (let i = 0; i < runs; i++) {
      await storeAdmin.createCertificate({ certificate: issued.alice.der, certificateId: "alice" });
      while (!(await admitted(echo))) await sleep(1);
      await storeAdmin.deleteCertificate({ certificateId: "alice" });
      const t0 = performance.now();
      let calls = 0;
      while (await admitted(echo)) {
        calls++;
        if (performance.now() - t0 > 10_000) throw new Error("the deletion did not reach the API server within 10 s");
      }
      samples.push(performance.now() - t0);
      log(
        `deletion ${i + 1}/${runs}: first refused call after ${fixed(samples[i] as number, 2)} ms (${calls} admitted calls before)`,
      );
    }
    await api.close();
    const sorted = [...samples].sort((a, b) => a - b);
    data.deletionMs = { samples, median: median(samples), worst: sorted[sorted.length - 1] };
    lines.push(
      `Deletion → first refused call on another server (mirror mode, ${runs} runs, calls back to back on one open connection):`,
      `  median ${fixed(median(samples), 2)} ms, worst ${fixed(sorted[sorted.length - 1] as number, 2)} ms (target < 1000 ms)`,
      "",
    );

    // 2. Lookup mode: cold (every look-up asks the service) and warm cache.
    await store.put("alice", issued.alice.der);
    const certificate: Certificate = parseCertificate(issued.alice.der);
    const signal = new AbortController().signal;
    const lookupTransport = createGrpcTransport({ baseUrl: serviceUrl, nodeOptions: nodeOptions(reader) });
    const cold = createRemoteStore({ transport: lookupTransport, mode: "lookup", cacheMaxEntries: 0 });
    const warm = createRemoteStore({ transport: lookupTransport, mode: "lookup" });
    const coldRuns = quick ? 200 : 1000;
    for (let i = 0; i < 50; i++) await cold.lookup(certificate, signal);
    const coldSamples: number[] = [];
    for (let i = 0; i < coldRuns; i++) {
      const t = performance.now();
      const v = await cold.lookup(certificate, signal);
      coldSamples.push((performance.now() - t) * 1000);
      if (v.kind !== "admitted") throw new Error(`cold look-up: ${v.kind}`);
    }
    await warm.lookup(certificate, signal);
    const warmRuns = quick ? 100_000 : 1_000_000;
    const t = performance.now();
    for (let i = 0; i < warmRuns; i++) await warm.lookup(certificate, signal);
    const warmUs = ((performance.now() - t) * 1000) / warmRuns;
    await cold.close();
    await warm.close();
    const coldSpread = spread(coldSamples);
    data.lookupUs = { cold: coldSpread, warm: warmUs };
    lines.push(
      "Lookup mode, one look-up at a time (VerifyCertificate over gRPC, TLS on 127.0.0.1):",
      `  cold cache: median ${fixed(coldSpread.median, 0)} µs per look-up (${fixed(coldSpread.min, 0)}..${fixed(coldSpread.max, 0)}), ${coldRuns} look-ups`,
      `  warm cache: ${fixed(warmUs, 3)} µs per look-up, ${warmRuns} look-ups`,
      "",
    );

    // 3. Calls per second: API server with the mirror vs the thumbprint store.
    const rate = await compareRates(pki, remote, options, quick, log);
    data.rate = rate.data;
    lines.push(...rate.lines);
    warnings.push(...rate.warnings);
  } finally {
    await remote.close();
    await service.close();
    await store.close();
    if (ownPki) await pki.close();
  }
  return {
    title: "remote-store: deletion propagation, lookup mode, mirror vs thumbprint store",
    lines,
    warnings,
    data,
  };
}

async function compareRates(
  pki: BenchPki,
  remote: CertificateStore,
  options: RemoteStoreBenchOptions,
  quick: boolean,
  log: (line: string) => void,
): Promise<{ lines: string[]; warnings: string[]; data: unknown }> {
  const protocol: WireProtocol = options.protocols?.[0] ?? "connect";
  const rounds = options.rounds ?? (quick ? 2 : 5);
  const warmupMs = options.warmupMs ?? (quick ? 1000 : 3000);
  const durationMs = options.durationMs ?? (quick ? 2000 : 8000);
  const pin = options.pin ?? tasksetWorks();
  const thumbprint = createThumbprintStore(pki.alice.sha1);
  const variants: [string, CertificateStore][] = [
    ["thumbprint", thumbprint],
    ["mirror", remote],
  ];
  // This process serves the API on core 0 while the load generator runs on
  // core 1; the previous affinity is restored afterwards.
  const previous = pin
    ? spawnSync("taskset", ["-pc", String(process.pid)], { encoding: "utf8" })
        .stdout.split(":")
        .pop()
        ?.trim()
    : undefined;
  if (pin) spawnSync("taskset", ["-pc", "0", String(process.pid)], { stdio: "ignore" });
  const rates: Record<string, number[]> = { thumbprint: [], mirror: [] };
  const utilization: { variant: string; server: number; load: number }[] = [];
  try {
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? variants : [...variants].reverse();
      for (const [name, store] of order) {
        const api = await startApiServer(pki, store);
        const load = await startChild(
          "./load-generator.ts",
          {
            protocol,
            path: echoPath,
            body: requestBody(protocol).toString("base64"),
            caPath: pki.caPath,
            certPath: pki.alice.certPath,
            keyPath: pki.alice.keyPath,
            sessions: options.sessions ?? 4,
            streams: options.streams ?? 64,
            connectionPerCall: false,
          } satisfies LoadConfig,
          { core: 1, pin },
        );
        try {
          await load.call("connect", { port: api.port });
          await load.call("load");
          await sleep(warmupMs);
          await load.call("mark");
          const cpu = process.cpuUsage();
          const wall = performance.now();
          await sleep(durationMs);
          const window = await load.call<LoadWindow>("report");
          const used = process.cpuUsage(cpu);
          const serverUtilization = (used.user + used.system) / ((performance.now() - wall) * 1000);
          await load.call("stop");
          if (window.failed > 0 || window.refused > 0) {
            throw new Error(
              `${name}: ${window.refused} refused, ${window.failed} failed (${window.firstFailure ?? ""})`,
            );
          }
          const callsPerSecond = window.ok / (window.wallUs / 1e6);
          rates[name]?.push(callsPerSecond);
          const loadUtilization = window.cpuUs / window.wallUs;
          utilization.push({ variant: name, server: serverUtilization, load: loadUtilization });
          log(
            `calls/s round ${round + 1}/${rounds} ${name}: ${Math.round(callsPerSecond)} (API server process CPU ${fixed(serverUtilization * 100, 0)}%, load generator CPU ${fixed(loadUtilization * 100, 0)}%)`,
          );
        } finally {
          await load.close();
          await api.close();
        }
      }
    }
  } finally {
    if (pin && previous !== undefined && previous !== "")
      spawnSync("taskset", ["-pc", previous, String(process.pid)], { stdio: "ignore" });
    await thumbprint.close();
  }
  const ratios = (rates.mirror ?? []).map((m, i) => m / (rates.thumbprint?.[i] ?? NaN));
  const ratio = spread(ratios);
  const lines = [
    `API server calls per second, ${protocol === "connect" ? "Connect" : "gRPC"} unary Echo, ${options.streams ?? 64} calls in flight on ${options.sessions ?? 4} connections, ${rounds} interleaved rounds:`,
    `  thumbprint store: ${Math.round(median(rates.thumbprint ?? []))} calls/s (median)`,
    `  remote store (mirror): ${Math.round(median(rates.mirror ?? []))} calls/s (median)`,
    `  ratio mirror / thumbprint: ${fixed(ratio.median, 3)} (${fixed(ratio.min, 3)}..${fixed(ratio.max, 3)}; target ≥ 0.97)`,
    "",
  ];
  const warnings = pin
    ? []
    : ["not pinned: the API server and the load generator share the cores; the ratio is noisier"];
  const loadBound = utilization.filter((u) => u.load > 0.9).length;
  if (loadBound > 0) {
    warnings.push(
      `in ${loadBound} of ${utilization.length} runs the load generator used over 90% of its core: it, not the API server, may have been the limit`,
    );
  }
  const idle = utilization.filter((u) => u.server < 0.8).length;
  if (idle > 0) {
    warnings.push(
      `in ${idle} of ${utilization.length} runs the API server process used under 80% of its core: the calls/s ratio says little about certgate's cost`,
    );
  }
  return { lines, warnings, data: { rates, ratio, utilization } };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const result = await run({ quick: process.argv.includes("--quick") });
  console.log(`\n## ${result.title}\n`);
  for (const line of result.lines) console.log(line);
  for (const warning of result.warnings) console.log(`WARNING: ${warning}`);
}
