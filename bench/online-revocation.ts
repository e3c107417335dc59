// online-revocation: what OCSP (validateRevocation.ocsp: "hard-fail") costs
// the decision core, in process, against the same policy without it
// (validateTrust: { ca } only), with an in-process OCSP responder:
//
// 1. a warm connection (the decision is cached): target ratio ≤ 1.02;
// 2. a certificate's first connection when its OCSP status is cached (a new
//    Certificate object each call: parsing, chain from the chain cache, the
//    status from a map);
// 3. the refresh load on the responder for 10,000 distinct certificates:
//    requests per refresh period, and how many run at once.
import { parseCertificate, type Certificate } from "../src/core/certificate.js";
import { createDecisionCore, type ClientCertOptions } from "../src/decision/decision.js";
import type { PeerCertificate } from "../src/index.js";
import { generateCertificates } from "../test/support/many-certificates.js";
import { createOcspResponderStub } from "../test/support/ocsp-responder-stub.js";
import type { BenchOptions, SectionResult } from "./section.js";
import { fixed, median, percent, table } from "./stats.js";

const target = 1.02;
const lifetimeMs = 60 * 60_000;
const refreshBeforeMs = 10 * 60_000;

const peerOf = (certificate: Certificate): PeerCertificate => ({
  certificate,
  authorized: false,
  authorizationError: undefined,
  encrypted: true,
});

/** Runs the section. */
export async function run(options: BenchOptions): Promise<SectionResult> {
  const count = 10_000;
  options.log(`online-revocation: issuing ${count} certificates`);
  const many = await generateCertificates(count, "online revocation bench");
  let now = Date.now();
  const stub = createOcspResponderStub({
    caCertDer: many.ca.der,
    caKeyPem: many.ca.key,
    now: () => now,
    lifetimeMs,
    delayMs: 1,
  });
  const base: ClientCertOptions = { clock: () => now, validateTrust: { ca: [many.ca.cert] } };
  const online: ClientCertOptions = {
    ...base,
    validateRevocation: {
      ocsp: "hard-fail",
      responderUrl: "http://ocsp.bench.invalid/",
      fetch: stub.fetch,
      refreshBeforeMs,
    },
  };
  const variants = ["without OCSP", "ocsp: hard-fail"];
  const cores = [createDecisionCore(base).decide, createDecisionCore(online).decide];
  const der = many.ders[0] as Uint8Array;
  const warmPeers = cores.map(() => peerOf(parseCertificate(der)));
  for (let k = 0; k < cores.length; k++) {
    const d = await cores[k]!(warmPeers[k]);
    if (d.kind !== "admitted") throw new Error(`online-revocation bench: not admitted (${variants[k]})`);
  }

  // 1: many short batches, the two variants alternating (each first in
  // turn), so that a burst of load from other processes hits both alike;
  // the ratio is the median of each pair's ratio.
  const warm: number[][] = [[], []];
  const batches = options.quick ? 60 : 200;
  const n = 20_000;
  for (let b = 0; b < batches; b++) {
    for (const k of b % 2 === 0 ? [0, 1] : [1, 0]) {
      const decide = cores[k]!;
      const peer = warmPeers[k]!;
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < n; i++) {
        if (decide(peer) instanceof Promise) throw new Error("online-revocation bench: a warm decision waited");
      }
      warm[k]!.push(Number(process.hrtime.bigint() - t0) / n);
    }
  }
  // 2: a new Certificate object per call (the decision is not cached), its
  // chain and, with OCSP, its status cached.
  const firstSeen: number[][] = [[], []];
  const m = 200;
  for (let b = 0; b < (options.quick ? 20 : 60); b++) {
    for (const k of b % 2 === 0 ? [0, 1] : [1, 0]) {
      const decide = cores[k]!;
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < m; i++) {
        const d = decide(peerOf(parseCertificate(der)));
        if (d instanceof Promise || d.kind !== "admitted")
          throw new Error("online-revocation bench: first seen waited");
      }
      firstSeen[k]!.push(Number(process.hrtime.bigint() - t0) / m / 1000);
    }
  }
  const paired = (xs: number[][]) => median(xs[1]!.map((x, i) => x / xs[0]![i]!));
  const warmRatio = paired(warm);
  const firstRatio = paired(firstSeen);

  // 3: every certificate seen once (one request each), then once more past
  // the refresh time (the refreshes run in the background).
  options.log("online-revocation: refresh load for 10,000 certificates");
  const refreshCore = createDecisionCore(online).decide;
  const certificates = many.ders.map((d) => parseCertificate(d));
  const before = stub.requests;
  stub.resetPeak();
  let t0 = performance.now();
  for (let i = 0; i < count; i += 500) {
    const batch = certificates.slice(i, i + 500).map((c) => refreshCore(peerOf(c)));
    for (const d of await Promise.all(batch)) if (d.kind !== "admitted") throw new Error("not admitted");
  }
  const firstFetchMs = performance.now() - t0;
  const firstRequests = stub.requests - before;
  const peakFirst = stub.peakInFlight;
  now += lifetimeMs - refreshBeforeMs / 2;
  const beforeRefresh = stub.requests;
  stub.resetPeak();
  t0 = performance.now();
  let waited = 0;
  for (const c of certificates) {
    const d = refreshCore(peerOf(c));
    if (d instanceof Promise) waited++;
    if ((await d).kind !== "admitted") throw new Error("not admitted during refresh");
  }
  const triggerMs = performance.now() - t0;
  while (stub.requests - beforeRefresh < count) await new Promise((r) => setTimeout(r, 5));
  const drainMs = performance.now() - t0;
  const refreshRequests = stub.requests - beforeRefresh;
  const periodMin = (lifetimeMs - refreshBeforeMs) / 60_000;

  const rows = variants.map((v, k) => [v, fixed(median(warm[k]!)), fixed(median(firstSeen[k]!), 2)]);
  const lines = [
    ...table(["decision core", "warm connection ns/call", "first seen, status cached µs/call"], rows),
    "",
    `warm connection, hard-fail / without: ${fixed(warmRatio, 3)} (target ≤ ${target}) ${warmRatio <= target ? "ok" : "OVER"}`,
    `first seen with a cached status, hard-fail / without: ${fixed(firstRatio, 3)} (${percent(firstRatio)})`,
    "",
    `10,000 certificates first seen: ${firstRequests} responder requests (${fixed(firstFetchMs / 1000, 2)} s, batches of 500 connections, at most ${peakFirst} in flight)`,
    `refresh (${periodMin} min period, responses valid ${lifetimeMs / 60_000} min, refreshBeforeMs ${refreshBeforeMs / 60_000} min): ${refreshRequests} requests, ` +
      `${fixed(refreshRequests / (periodMin * 60), 1)}/s on average, at most ${stub.peakInFlight} in flight; ` +
      `${waited} of ${count} calls waited; decisions took ${fixed(triggerMs, 0)} ms, refreshes drained in ${fixed(drainMs / 1000, 2)} s`,
  ];
  return {
    title: "online revocation: OCSP hard-fail against no OCSP, in process",
    lines,
    warnings: warmRatio <= target ? [] : [`warm-connection ratio ${fixed(warmRatio, 3)} is above ${target}`],
    data: {
      warmNs: { without: median(warm[0]!), hardFail: median(warm[1]!) },
      firstSeenUs: { without: median(firstSeen[0]!), hardFail: median(firstSeen[1]!) },
      warmRatio,
      firstRatio,
      refresh: {
        count,
        firstRequests,
        refreshRequests,
        perSecond: refreshRequests / (periodMin * 60),
        peakInFlight: stub.peakInFlight,
        waited,
        drainMs,
      },
    },
  };
}
