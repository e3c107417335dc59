// mirror-scale: the remote store's mirror at fleet scale.
//
// 1. One mirror (createRemoteStore, mirror mode) of a service holding 1k and
//    1M certificates: time from createRemoteStore to its first admitted
//    look-up, resident memory growth per certificate (after GC, in a child
//    process of its own), and the warm sync look-up (hit and miss) at both
//    sizes.
// 2. Fan-out: 500 mirrors in four child processes, each on its own HTTP/2
//    connection, watching one service: when each mirror first refuses a
//    deleted certificate (its sync look-up, the one the decision core uses,
//    answers refused), a burst of 10,000 deletions checked on every mirror,
//    and the service's CPU per watcher per change at 50 and at 500 watchers.
//
// The service runs in a child over a synthetic store (bench/synthetic-store.ts:
// ids and SHA-256 thumbprints, no DER), so that the figures are the mirrors'
// and the service's fan-out, not a database's reads. The heavy parts run
// once (no interleaved rounds): ready time and memory are one-off figures.
//
// Run alone: npx tsx bench/mirror-scale.ts [--quick]
import { availableParallelism, loadavg } from "node:os";
import { pathToFileURL } from "node:url";
import { parseCertificate } from "../src/core/certificate.js";
import { createDevCa, issueDevCertificate } from "../src/dev-certificates.js";
import { startChild, type ChildHandle } from "./ipc.js";
import type { MemoryReading, MirrorChildConfig } from "./mirror-child.js";
import type { MirrorServiceConfig } from "./mirror-service-child.js";
import type { BenchOptions, SectionResult } from "./section.js";
import { fixed, median, table } from "./stats.js";

/** The issue's targets. */
const targets = { readyMs: 10_000, bytesPerCertificate: 100, lookupNs: 1000, p50Ms: 50, p99Ms: 150 };

interface Tls {
  readonly ca: string;
  readonly server: { cert: string; key: string };
  readonly reader: { cert: string; key: string; sha256: string };
}

async function makeTls(): Promise<Tls> {
  const ca = await createDevCa({ commonName: "mirror-scale CA" });
  const server = await issueDevCertificate(ca, {
    commonName: "localhost",
    dnsNames: ["localhost"],
    ipAddresses: ["127.0.0.1"],
    usages: ["server"],
  });
  const reader = await issueDevCertificate(ca, { commonName: "mirror reader", usages: ["client"] });
  return {
    ca: ca.cert,
    server: { cert: server.cert, key: server.key },
    reader: { cert: reader.cert, key: reader.key, sha256: parseCertificate(reader.der).sha256 },
  };
}

async function startService(
  tls: Tls,
  count: number,
  watchJournalSize?: number,
  cpuProfDir?: string,
): Promise<{ child: ChildHandle; url: string }> {
  const child = await startChild(
    "./mirror-service-child.ts",
    {
      count,
      cert: tls.server.cert,
      key: tls.server.key,
      readerSha256: tls.reader.sha256,
      ...(watchJournalSize === undefined ? {} : { watchJournalSize }),
    } satisfies MirrorServiceConfig,
    {
      startTimeoutMs: 300_000,
      nodeArgs: cpuProfDir === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${cpuProfDir}`],
    },
  );
  return { child, url: await child.call<string>("url") };
}

function startMirrors(tls: Tls, url: string): Promise<ChildHandle> {
  return startChild(
    "./mirror-child.ts",
    { url, ca: tls.ca, cert: tls.reader.cert, key: tls.reader.key } satisfies MirrorChildConfig,
    { nodeArgs: ["--expose-gc"] },
  );
}

interface SizeFigures {
  readonly size: number;
  readonly readyMs: number;
  /** CPU time of the mirror's and the service's processes until ready: steadier than wall time on a shared machine. */
  readonly mirrorCpuMs: number;
  readonly serviceCpuMs: number;
  readonly rssBytesPerCertificate: number;
  readonly heapBytesPerCertificate: number;
  readonly hitNs: number;
  readonly missNs: number;
}

async function measureSize(tls: Tls, size: number, log: (line: string) => void): Promise<SizeFigures> {
  const service = await startService(tls, size);
  const mirror = await startMirrors(tls, service.url);
  try {
    const before = await mirror.call<MemoryReading>("read");
    const cpu = async () => {
      const [m, s] = await Promise.all([
        mirror.call<NodeJS.CpuUsage>("cpu"),
        service.child.call<NodeJS.CpuUsage>("cpu"),
      ]);
      return [m.user + m.system, s.user + s.system];
    };
    const cpu0 = await cpu();
    const [readyMs] = await mirror.call<number[]>("start", { count: 1, admitted: size - 1 }, 600_000);
    const cpu1 = await cpu();
    const after = await mirror.call<MemoryReading>("read");
    const { hitNs, missNs } = await mirror.call<{ hitNs: number; missNs: number }>("lookupNs", { size }, 600_000);
    const figures = {
      size,
      readyMs: readyMs as number,
      mirrorCpuMs: (cpu1[0]! - cpu0[0]!) / 1000,
      serviceCpuMs: (cpu1[1]! - cpu0[1]!) / 1000,
      rssBytesPerCertificate: (after.rss - before.rss) / size,
      heapBytesPerCertificate: (after.heap + after.external - before.heap - before.external) / size,
      hitNs,
      missNs,
    };
    log(
      `${size} certificates: ready in ${fixed(figures.readyMs, 0)} ms, RSS ${fixed(figures.rssBytesPerCertificate, 0)} B/cert, look-up ${fixed(hitNs, 0)} ns`,
    );
    return figures;
  } finally {
    await mirror.close();
    await service.child.close();
  }
}

interface FanOutFigures {
  readonly mirrors: number;
  readonly latencyMs: { p50: number; p99: number; max: number; samples: number; missing: number };
  readonly burst: { deletions: number; admittedAfter: number; snapshots: number; lastMirrorMs: number };
  readonly cpuUsPerWatcherChange: { few: number; fewWatchers: number; many: number; single: number };
}

async function fanOut(
  tls: Tls,
  quick: boolean,
  log: (line: string) => void,
  cpuProfDir: string | undefined,
): Promise<FanOutFigures> {
  const processes = quick ? 2 : 4;
  const perProcess = quick ? 25 : 125;
  const few = quick ? 10 : 50;
  const fewBurst = quick ? 500 : 2000;
  const singles = quick ? 5 : 20;
  const burst = quick ? 2000 : 10_000;
  const count = fewBurst + singles + burst + 1000;
  // A journal that holds the whole burst: with the default (4096 changed
  // ids) a watcher behind by more gets a new snapshot instead (correct, and
  // counted below, but a snapshot of a large store for every API server).
  const service = await startService(tls, count, 2 * burst, cpuProfDir);
  const children: ChildHandle[] = [];
  const cpu = () => service.child.call<NodeJS.CpuUsage>("cpu");
  const cpuSpan = (a: NodeJS.CpuUsage, b: NodeJS.CpuUsage) => b.user + b.system - a.user - a.system;
  try {
    for (let p = 0; p < processes; p++) children.push(await startMirrors(tls, service.url));
    const admitted = count - 1;
    // A burst with few watchers first, for the CPU per watcher per change.
    await children[0]!.call("start", { count: few, admitted }, 300_000);
    const burstOf = async (watchers: ChildHandle[], from: number, to: number) => {
      await Promise.all(watchers.map((c) => c.call("follow", { index: to - 1, timeoutMs: 120_000 })));
      const c0 = await cpu();
      const { at } = await service.child.call<{ at: number }>("delete", { from, to }, 300_000);
      const times = (
        await Promise.all(watchers.map((c) => c.call<(number | undefined)[]>("collect", undefined, 300_000)))
      ).flat();
      const c1 = await cpu();
      return { at, times, cpuUs: cpuSpan(c0, c1) };
    };
    const fewRun = await burstOf([children[0]!], 0, fewBurst);
    const fewCpu = fewRun.cpuUs / (few * fewBurst);
    log(`${few} watchers, burst of ${fewBurst}: service CPU ${fixed(fewCpu, 2)} µs per watcher per change`);
    await Promise.all(
      children.map((c, i) => c.call("start", { count: i === 0 ? perProcess - few : perProcess, admitted }, 600_000)),
    );
    const mirrors = processes * perProcess;
    log(`${mirrors} mirrors in ${processes} processes ready`);
    const latencies: number[] = [];
    let missing = 0;
    let singlesCpuUs = 0;
    for (let s = 0; s < singles; s++) {
      const index = fewBurst + s;
      const run = await burstOf(children, index, index + 1);
      singlesCpuUs += run.cpuUs;
      for (const t of run.times) {
        if (t === undefined) missing++;
        else latencies.push(t - run.at);
      }
    }
    latencies.sort((a, b) => a - b);
    const pct = (q: number) =>
      latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? Number.NaN;
    log(
      `single deletions: p50 ${fixed(pct(0.5), 1)} ms, p99 ${fixed(pct(0.99), 1)} ms over ${latencies.length} mirror refusals`,
    );
    const from = fewBurst + singles;
    const big = await burstOf(children, from, from + burst);
    const manyCpu = big.cpuUs / (mirrors * burst);
    const lastMirrorMs = Math.max(...big.times.map((t) => (t === undefined ? Number.POSITIVE_INFINITY : t - big.at)));
    const checks = await Promise.all(
      children.map((c) =>
        c.call<{ admitted: number; snapshots: number }>("verify", { from, to: from + burst }, 300_000),
      ),
    );
    const admittedAfter = checks.reduce((n, c) => n + c.admitted, 0);
    // Every mirror took one snapshot at start; more mean it fell behind the journal.
    const snapshots = checks.reduce((n, c) => n + c.snapshots, 0) - mirrors;
    log(
      `burst of ${burst}: every mirror had it after ${fixed(lastMirrorMs, 0)} ms, ${admittedAfter} deleted certificates still admitted, ${snapshots} new snapshots; service CPU ${fixed(manyCpu, 2)} µs per watcher per change`,
    );
    return {
      mirrors,
      latencyMs: {
        p50: pct(0.5),
        p99: pct(0.99),
        max: latencies[latencies.length - 1] ?? Number.NaN,
        samples: latencies.length,
        missing,
      },
      burst: { deletions: burst, admittedAfter, snapshots, lastMirrorMs },
      cpuUsPerWatcherChange: {
        few: fewCpu,
        fewWatchers: few,
        many: manyCpu,
        single: singlesCpuUs / (singles * mirrors),
      },
    };
  } finally {
    await Promise.all(children.map((c) => c.call("close", undefined, 60_000).catch(() => undefined)));
    await Promise.all(children.map((c) => c.close()));
    await service.child.close();
  }
}

/**
 * run measures the mirror at 1k and 1M certificates and the fan-out to 500 mirrors.
 */
export async function run(options: Partial<BenchOptions> = {}): Promise<SectionResult> {
  const quick = options.quick === true;
  const log = options.log ?? ((line: string) => console.log(`  · ${line}`));
  const sizeOverride = Number(process.env.CERTGATE_BENCH_MIRROR_COUNT ?? "");
  const big = Number.isSafeInteger(sizeOverride) && sizeOverride > 0 ? sizeOverride : quick ? 100_000 : 1_000_000;
  const tls = await makeTls();
  const load = loadavg().map((l) => fixed(l, 1));
  const sizes: SizeFigures[] = [];
  for (const size of [1000, big]) sizes.push(await measureSize(tls, size, log));
  const fan =
    process.env.CERTGATE_BENCH_MIRROR_FANOUT === "off" ? undefined : await fanOut(tls, quick, log, options.cpuProfDir);
  const lines = [
    `${availableParallelism()} cores (load average ${load.join(" ")}), Node ${process.version}; targets: ready <= ${targets.readyMs} ms at 1M, <= ${targets.bytesPerCertificate} B RSS per certificate, look-up <= ${targets.lookupNs} ns and flat`,
    "",
    ...table(
      [
        "certificates",
        "ready ms",
        "mirror CPU ms",
        "service CPU ms",
        "RSS B/cert",
        "heap+ext B/cert",
        "hit ns",
        "miss ns",
      ],
      sizes.map((s) => [
        String(s.size),
        fixed(s.readyMs, 0),
        fixed(s.mirrorCpuMs, 0),
        fixed(s.serviceCpuMs, 0),
        fixed(s.rssBytesPerCertificate, 0),
        fixed(s.heapBytesPerCertificate, 0),
        fixed(s.hitNs, 0),
        fixed(s.missNs, 0),
      ]),
    ),
    "",
    "ready: createRemoteStore() until its first admitted look-up (snapshot over gRPC/TLS on 127.0.0.1 from a service over a",
    "synthetic store), wall time and the CPU time of each process meanwhile. RSS B/cert: resident memory after less",
    "before (after GC, in a child of its own). hit/miss: warm sync",
    "look-up (the decision core's) over 1024 certificates spread across the store, best of 5 x 1M.",
  ];
  const warnings: string[] = [];
  if (fan !== undefined) {
    lines.push(
      "",
      `Fan-out: ${fan.mirrors} mirrors in child processes, each on its own connection to one service:`,
      `  deletion -> mirror refuses: p50 ${fixed(fan.latencyMs.p50, 1)} ms, p99 ${fixed(fan.latencyMs.p99, 1)} ms, max ${fixed(fan.latencyMs.max, 1)} ms over ${fan.latencyMs.samples} refusals (targets < ${targets.p50Ms} / < ${targets.p99Ms} ms)${fan.latencyMs.missing > 0 ? `, ${fan.latencyMs.missing} never seen` : ""}`,
      `  burst of ${fan.burst.deletions} deletions (one revision each, in a loop in the service, watchJournalSize ${2 * fan.burst.deletions}): on every mirror after ${fixed(fan.burst.lastMirrorMs, 0)} ms; deleted yet admitted: ${fan.burst.admittedAfter}; resyncs by snapshot: ${fan.burst.snapshots}`,
      `  service CPU per watcher per change in a burst: ${fixed(fan.cpuUsPerWatcherChange.few, 2)} µs at ${fan.cpuUsPerWatcherChange.fewWatchers} watchers, ${fixed(fan.cpuUsPerWatcherChange.many, 2)} µs at ${fan.mirrors}; one deletion alone: ${fixed(fan.cpuUsPerWatcherChange.single, 1)} µs per watcher`,
    );
    if (fan.burst.admittedAfter > 0 || fan.latencyMs.missing > 0) warnings.push("some mirrors missed deletions");
  }
  const largest = sizes[sizes.length - 1]!;
  if (largest.readyMs > targets.readyMs)
    warnings.push(`ready after ${fixed(largest.readyMs, 0)} ms at ${largest.size}`);
  if (largest.rssBytesPerCertificate > targets.bytesPerCertificate)
    warnings.push(`${fixed(largest.rssBytesPerCertificate, 0)} B RSS per certificate at ${largest.size}`);
  return {
    title: "mirror-scale: the remote store's mirror at 1k and 1M certificates, and fan-out to 500 mirrors",
    lines,
    warnings,
    data: { sizes, fan, median: median(sizes.map((s) => s.hitNs)) },
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const result = await run({ quick: process.argv.includes("--quick") });
  console.log(`\n## ${result.title}\n`);
  for (const line of result.lines) console.log(line);
  for (const warning of result.warnings) console.log(`WARNING: ${warning}`);
}
